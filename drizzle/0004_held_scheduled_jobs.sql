DROP INDEX "jobs_claim_idx";--> statement-breakpoint
CREATE INDEX "jobs_held_idx" ON "jobs" USING btree ("run_at") WHERE "jobs"."status" = 'queued' AND "jobs"."fair_tag" >= 4503599627370496;--> statement-breakpoint
CREATE INDEX "jobs_claim_idx" ON "jobs" USING btree ("queue","priority" DESC NULLS LAST,"fair_tag","id") WHERE "jobs"."status" = 'queued' AND "jobs"."fair_tag" < 4503599627370496;