DROP INDEX "jobs_lease_idx";--> statement-breakpoint
DROP INDEX "jobs_slot_idx";--> statement-breakpoint
CREATE INDEX "jobs_slot_idx" ON "jobs" USING btree ("queue","tenant","group_key","lease_expires_at") WHERE "jobs"."attempts" > 0 AND ("jobs"."status" = 'running' OR "jobs"."status" = 'queued');