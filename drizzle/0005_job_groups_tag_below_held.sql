-- First, so no writer can poison a row between the repair and the check (and the lock is
-- not upgraded halfway, which could deadlock with a running submit).
LOCK TABLE "job_groups" IN ACCESS EXCLUSIVE MODE;--> statement-breakpoint
-- A row poisoned before this check (see schema.ts) restarts at the highest sound tag of its
-- queue. For the queue's clock row that keeps "clock + slack is above every tag handed out",
-- so a drained queue does not let a newcomer's flood ahead of an established group; for a
-- group it means its next job joins the back of the line. Its jobs holding tags at or above
-- 2^52 sit in the held index and are tagged again by the next promotion.
UPDATE "job_groups" k SET "last_tag" = coalesce(
  (SELECT max(g."last_tag") FROM "job_groups" g WHERE g."queue" = k."queue" AND g."last_tag" < 4503599627370496), 0)
WHERE k."last_tag" >= 4503599627370496;--> statement-breakpoint
ALTER TABLE "job_groups" ADD CONSTRAINT "job_groups_tag_below_held" CHECK ("job_groups"."last_tag" < 4503599627370496);
