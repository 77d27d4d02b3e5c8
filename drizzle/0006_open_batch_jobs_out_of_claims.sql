-- SHARE ROW EXCLUSIVE covers both the UPDATE and CREATE INDEX below, so no lock is
-- upgraded halfway (a deadlock with a submit that read jobs first); reads go on meanwhile.
LOCK TABLE "jobs" IN SHARE ROW EXCLUSIVE MODE;--> statement-breakpoint
-- Queued jobs of batches still open take the open-batch tag (PREPARING_TAG in schema.ts).
UPDATE "jobs" SET "fair_tag" = 6755399441055744
FROM "batches" b
WHERE "jobs"."batch_id" = b."id" AND b."status" = 'preparing' AND "jobs"."status" = 'queued';--> statement-breakpoint
CREATE INDEX "jobs_held_due_idx" ON "jobs" USING btree ("run_at") WHERE "jobs"."status" = 'queued' AND "jobs"."fair_tag" >= 4503599627370496 AND "jobs"."fair_tag" < 6755399441055744;--> statement-breakpoint
CREATE INDEX "jobs_preparing_idx" ON "jobs" USING btree ("batch_id") WHERE "jobs"."status" = 'queued' AND "jobs"."fair_tag" >= 6755399441055744;