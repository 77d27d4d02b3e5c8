-- Progress (heartbeat) and tags (submit). ADD COLUMN with a constant default rewrites nothing.
ALTER TABLE "jobs" ADD COLUMN "progress" jsonb;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "tags" text[] DEFAULT '{}'::text[] NOT NULL;--> statement-breakpoint
CREATE TABLE "job_tags" (
	"tenant" text NOT NULL,
	"tag" text NOT NULL,
	"created_at" timestamp with time zone NOT NULL,
	"id" uuid NOT NULL
);
--> statement-breakpoint
CREATE UNIQUE INDEX "job_tags_uidx" ON "job_tags" USING btree ("tenant","tag","created_at" DESC NULLS LAST,"id" DESC NULLS LAST);--> statement-breakpoint
-- job_tags is kept by the triggers that keep job_list (drizzle/0002): one statement per insert or
-- delete of jobs, whichever path wrote it, and nothing at all for jobs without tags.
-- No backfill: no job had tags before this migration.
CREATE OR REPLACE FUNCTION "jobline_list_added"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO job_list (tenant, created_at, id) SELECT tenant, created_at, id FROM added;
  INSERT INTO job_tags (tenant, tag, created_at, id)
    SELECT DISTINCT a.tenant, t.tag, a.created_at, a.id FROM added a, unnest(a.tags) AS t(tag)
    WHERE a.tags <> '{}';
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE OR REPLACE FUNCTION "jobline_list_removed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM job_list l USING removed r
  WHERE l.tenant = r.tenant AND l.created_at = r.created_at AND l.id = r.id;
  DELETE FROM job_tags jt USING (SELECT r.tenant, t.tag, r.created_at, r.id FROM removed r, unnest(r.tags) AS t(tag)
                                 WHERE r.tags <> '{}') x
  WHERE jt.tenant = x.tenant AND jt.tag = x.tag AND jt.created_at = x.created_at AND jt.id = x.id;
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE OR REPLACE FUNCTION "jobline_list_truncated"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  TRUNCATE job_list;
  TRUNCATE job_tags;
  RETURN NULL;
END $$;
