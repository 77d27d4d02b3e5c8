-- Blocks writers from here to the commit (migrations run in one transaction), so no insert
-- can commit between the backfill's snapshot and the triggers' creation and be missed.
-- ACCESS EXCLUSIVE at once, because DROP INDEX below needs it: taking a weaker lock first
-- and upgrading it later deadlocks with a transaction that read jobs and then writes it.
LOCK TABLE "jobs" IN ACCESS EXCLUSIVE MODE;--> statement-breakpoint
CREATE TABLE "job_list" (
	"tenant" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"id" uuid NOT NULL
);
--> statement-breakpoint
INSERT INTO "job_list" ("tenant", "created_at", "id") SELECT "tenant", "created_at", "id" FROM "jobs";--> statement-breakpoint
DROP INDEX "jobs_tenant_list_idx";--> statement-breakpoint
CREATE UNIQUE INDEX "job_list_uidx" ON "job_list" USING btree ("tenant","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
-- Statement-level triggers with transition tables: one INSERT (or DELETE) per statement,
-- whichever path wrote jobs (single submit, multi-row insert, batch create, retention,
-- a batch's cascade delete), so job_list cannot drift from jobs.
CREATE FUNCTION "jobline_list_added"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_list (tenant, created_at, id) SELECT tenant, created_at, id FROM added;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE FUNCTION "jobline_list_removed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM job_list l USING removed r
  WHERE l.tenant = r.tenant AND l.created_at = r.created_at AND l.id = r.id;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE FUNCTION "jobline_list_truncated"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE job_list;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER "jobs_listed" AFTER INSERT ON "jobs" REFERENCING NEW TABLE AS added
  FOR EACH STATEMENT EXECUTE FUNCTION "jobline_list_added"();--> statement-breakpoint
CREATE TRIGGER "jobs_unlisted" AFTER DELETE ON "jobs" REFERENCING OLD TABLE AS removed
  FOR EACH STATEMENT EXECUTE FUNCTION "jobline_list_removed"();--> statement-breakpoint
CREATE TRIGGER "jobs_list_truncated" AFTER TRUNCATE ON "jobs"
  FOR EACH STATEMENT EXECUTE FUNCTION "jobline_list_truncated"();
