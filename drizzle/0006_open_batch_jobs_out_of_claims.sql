-- Taken at once (DROP INDEX needs it anyway): no lock upgrade halfway to deadlock on.
LOCK TABLE "jobs" IN ACCESS EXCLUSIVE MODE;--> statement-breakpoint
-- Queued jobs of batches still open take the open-batch tag (PREPARING_TAG in schema.ts).
UPDATE "jobs" SET "fair_tag" = 6755399441055744
FROM "batches" b
WHERE "jobs"."batch_id" = b."id" AND b."status" = 'preparing' AND "jobs"."status" = 'queued';--> statement-breakpoint
DROP INDEX "jobs_held_idx";--> statement-breakpoint
CREATE INDEX "jobs_preparing_idx" ON "jobs" USING btree ("batch_id") WHERE "jobs"."status" = 'queued' AND "jobs"."fair_tag" >= 6755399441055744;--> statement-breakpoint
CREATE INDEX "jobs_held_idx" ON "jobs" USING btree ("run_at") WHERE "jobs"."status" = 'queued' AND "jobs"."fair_tag" >= 4503599627370496 AND "jobs"."fair_tag" < 6755399441055744;