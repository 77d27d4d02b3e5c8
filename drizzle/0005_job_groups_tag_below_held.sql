-- A group poisoned before this check (see schema.ts) restarts from the queue's virtual time,
-- which allocation takes as its floor; its jobs holding tags at or above 2^52 are in the
-- held index and are tagged again by the next promotion.
UPDATE "job_groups" SET "last_tag" = 0 WHERE "last_tag" >= 4503599627370496;--> statement-breakpoint
ALTER TABLE "job_groups" ADD CONSTRAINT "job_groups_tag_below_held" CHECK ("job_groups"."last_tag" < 4503599627370496);
