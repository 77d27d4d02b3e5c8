ALTER TABLE "batches" ADD COLUMN "seal_by" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "timeout_seconds" integer;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "deadline_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "expires_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "dedupe_key" text;--> statement-breakpoint
CREATE INDEX "batches_seal_by_idx" ON "batches" USING btree ("seal_by") WHERE "batches"."status" = 'preparing' AND "batches"."seal_by" IS NOT NULL;--> statement-breakpoint
CREATE INDEX "jobs_expires_idx" ON "jobs" USING btree ("expires_at") WHERE "jobs"."status" = 'queued' AND "jobs"."expires_at" IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_dedupe_uidx" ON "jobs" USING btree ("tenant","queue","dedupe_key") WHERE "jobs"."status" IN ('queued','running') AND "jobs"."dedupe_key" IS NOT NULL;