CREATE TYPE "public"."schedule_catch_up" AS ENUM('none', 'latest');--> statement-breakpoint
CREATE TYPE "public"."schedule_overlap" AS ENUM('allow', 'skip');--> statement-breakpoint
CREATE TABLE "schedules" (
	"id" uuid PRIMARY KEY DEFAULT jobline_uuidv7() NOT NULL,
	"tenant" text NOT NULL,
	"name" text NOT NULL,
	"cron" text NOT NULL,
	"timezone" text DEFAULT 'UTC' NOT NULL,
	"job" jsonb NOT NULL,
	"overlap" "schedule_overlap" DEFAULT 'allow' NOT NULL,
	"catch_up" "schedule_catch_up" DEFAULT 'latest' NOT NULL,
	"paused" boolean DEFAULT false NOT NULL,
	"next_run_at" timestamp with time zone,
	"last_run_at" timestamp with time zone,
	"last_job_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"version" integer DEFAULT 1 NOT NULL
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "schedule_id" uuid;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "scheduled_for" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "schedules_tenant_name_uidx" ON "schedules" USING btree ("tenant","name");--> statement-breakpoint
CREATE INDEX "schedules_tenant_created_idx" ON "schedules" USING btree ("tenant","created_at","id");--> statement-breakpoint
CREATE INDEX "schedules_due_idx" ON "schedules" USING btree ("next_run_at") WHERE "schedules"."next_run_at" IS NOT NULL;--> statement-breakpoint
CREATE UNIQUE INDEX "jobs_schedule_tick_uidx" ON "jobs" USING btree ("schedule_id","scheduled_for") WHERE "jobs"."schedule_id" IS NOT NULL;