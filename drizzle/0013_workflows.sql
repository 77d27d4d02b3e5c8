ALTER TYPE "public"."job_status" ADD VALUE 'waiting';--> statement-breakpoint
CREATE TABLE "dependency_cascade" (
	"parent_id" uuid PRIMARY KEY NOT NULL,
	"parent_is_batch" boolean NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "job_dependencies" (
	"parent_id" uuid NOT NULL,
	"parent_is_batch" boolean NOT NULL,
	"child_id" uuid NOT NULL,
	"resolved" boolean DEFAULT false NOT NULL,
	CONSTRAINT "job_dependencies_parent_id_child_id_pk" PRIMARY KEY("parent_id","child_id")
);
--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "depends_on" jsonb;--> statement-breakpoint
ALTER TABLE "jobs" ADD COLUMN "pending_dependencies" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "job_dependencies" ADD CONSTRAINT "job_dependencies_child_id_jobs_id_fk" FOREIGN KEY ("child_id") REFERENCES "public"."jobs"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "job_dependencies_child_idx" ON "job_dependencies" USING btree ("child_id");--> statement-breakpoint
-- Workflows (docs/workflows.md). Resolves the unresolved edges of one finished parent (a job or a
-- batch): each edge once (resolved = true under its row lock), each waiting dependent released
-- (waiting -> queued, held tag: the next promotion tags it) when it was the last parent and all
-- succeeded, or cancelled (dependency_failed) at once when this parent did not succeed. The
-- guard status = 'waiting' is the transition table's resolve row (src/domain/jobs.ts). A cancelled
-- dependent is finalised by a copy of finaliseTail (src/repositories/jobs/finalise.ts; a test
-- checks the copy): batch counts, its job.cancelled event, its batch's completion. Released
-- queues are announced by NOTIFY (sent at commit). p_child: only that child's edge (a submit).
CREATE FUNCTION jobline_resolve_dependents(p_parent uuid, p_succeeded boolean, p_child uuid DEFAULT NULL) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
  v_n integer;
  v_queues text[];
  v_q text;
BEGIN
  WITH e AS (
    UPDATE job_dependencies SET resolved = true
    WHERE parent_id = p_parent AND NOT resolved AND (p_child IS NULL OR child_id = p_child)
    RETURNING child_id
  ), c AS (SELECT child_id, count(*)::int AS n FROM e GROUP BY child_id),
  l AS (
    -- Dependents in id order, as every multi-row writer locks jobs.
    SELECT jobs.id, c.n FROM jobs JOIN c ON jobs.id = c.child_id
    WHERE jobs.status = 'waiting' ORDER BY jobs.id FOR NO KEY UPDATE OF jobs
  ), j AS (
    UPDATE jobs SET
      pending_dependencies = jobs.pending_dependencies - l.n,
      status = CASE WHEN NOT p_succeeded THEN 'cancelled'::job_status
                    WHEN jobs.pending_dependencies - l.n <= 0 THEN 'queued'::job_status
                    ELSE jobs.status END,
      -- A job of a batch still open keeps the open-batch tag (the seal releases it).
      fair_tag = CASE WHEN NOT p_succeeded OR jobs.pending_dependencies - l.n > 0 THEN jobs.fair_tag
                      WHEN jobs.fair_tag >= 6755399441055744
                           AND EXISTS (SELECT 1 FROM batches b WHERE b.id = jobs.batch_id AND b.status = 'preparing')
                      THEN jobs.fair_tag
                      ELSE 4503599627370496 END,
      last_error = CASE WHEN p_succeeded THEN jobs.last_error
                        ELSE jsonb_build_object('message', 'a job or batch it depends on did not succeed',
                                                'code', 'dependency_failed', 'dependency', p_parent) END,
      finished_at = CASE WHEN p_succeeded THEN jobs.finished_at ELSE now() END,
      updated_at = now(), version = jobs.version + 1
    FROM l WHERE jobs.id = l.id AND jobs.status = 'waiting'
    RETURNING jobs.*
  ), fin AS (SELECT * FROM j WHERE status = 'cancelled'),

  fin_counts AS (
    SELECT batch_id, generation,
           count(*)::int AS n,
           count(*) FILTER (WHERE status = 'succeeded')::int AS s,
           count(*) FILTER (WHERE status = 'failed')::int AS f,
           count(*) FILTER (WHERE status = 'cancelled')::int AS c
    FROM fin WHERE batch_id IS NOT NULL GROUP BY batch_id, generation
  ),
  fin_batch_lock AS (
    -- Batches in id order, like jobs, so concurrent multi-batch finalisations cannot deadlock.
    SELECT b.id FROM batches b JOIN fin_counts fc ON fc.batch_id = b.id ORDER BY b.id FOR NO KEY UPDATE OF b
  ),
  fin_batches AS (
    UPDATE batches b SET
      remaining = b.remaining - fc.n,
      succeeded_count = b.succeeded_count + fc.s,
      failed_count = b.failed_count + fc.f,
      cancelled_count = b.cancelled_count + fc.c,
      status = CASE
        WHEN b.remaining - fc.n > 0 OR b.status NOT IN ('pending','running') THEN b.status
        WHEN b.cancel_requested THEN 'cancelled'::batch_status
        WHEN b.succeeded_count + fc.s = b.total THEN 'succeeded'::batch_status
        WHEN b.succeeded_count + fc.s > 0 THEN 'partially_succeeded'::batch_status
        WHEN b.failed_count + fc.f > 0 THEN 'failed'::batch_status
        ELSE 'cancelled'::batch_status END,
      finished_at = CASE
        WHEN b.remaining - fc.n > 0 OR b.status NOT IN ('pending','running') THEN b.finished_at
        ELSE now() END,
      updated_at = now(),
      version = b.version + 1
    FROM fin_counts fc JOIN fin_batch_lock l ON l.id = fc.batch_id
    WHERE b.id = fc.batch_id AND b.generation = fc.generation
    RETURNING b.*
  ),
  fin_job_events AS (
    INSERT INTO webhook_outbox (tenant, subject_id, event_type, generation, url, data)
    -- generation + retries: each retry (batch or operator) bumps one of them, so each finalisation has its own event.
    SELECT tenant, id, 'job.' || status::text, generation + retries, webhook_url,
           to_jsonb(fin) - 'lease_token' - 'request_hash' - 'fair_tag'
    FROM fin WHERE webhook_url IS NOT NULL
    ON CONFLICT (subject_id, event_type, generation) DO NOTHING
    RETURNING 1
  ),
  fin_batch_events AS (
    INSERT INTO webhook_outbox (tenant, subject_id, event_type, generation, url, data)
    SELECT tenant, id, 'batch.completed', generation, webhook_url, to_jsonb(fin_batches)
    FROM fin_batches
    WHERE webhook_url IS NOT NULL
      AND status IN ('succeeded','failed','partially_succeeded','cancelled')
    ON CONFLICT (subject_id, event_type, generation) DO NOTHING
    RETURNING 1
  )
  SELECT count(*)::int, array_agg(DISTINCT queue) FILTER (WHERE status = 'queued') INTO v_n, v_queues FROM j;
  IF v_queues IS NOT NULL THEN
    FOREACH v_q IN ARRAY v_queues LOOP
      PERFORM pg_notify('jobline_jobs', v_q);
    END LOOP;
  END IF;
  RETURN v_n;
END
$fn$;--> statement-breakpoint
-- Run after the statement that finished a parent, with a fresh snapshot per query (plpgsql, READ
-- COMMITTED): a child whose submit held the parent's row (FOR SHARE) until it committed is seen,
-- which a CTE of the finalising statement, reading that statement's snapshot, would miss. Inside
-- a resolution (depth > 1: a cancelled dependent, a batch it finalised) the parent is queued in
-- dependency_cascade for the next step instead: no unbounded recursion inside one statement.
CREATE FUNCTION jobline_parent_finished() RETURNS trigger
LANGUAGE plpgsql AS $fn$
DECLARE
  v_batch boolean := TG_TABLE_NAME = 'batches';
BEGIN
  IF NOT EXISTS (SELECT 1 FROM job_dependencies WHERE parent_id = NEW.id AND NOT resolved) THEN
    RETURN NULL;
  END IF;
  -- jobline.cascade_levels: set by a cascade step (deeper levels per step); a request's statement resolves one.
  IF pg_trigger_depth() > coalesce(nullif(current_setting('jobline.cascade_levels', true), ''), '1')::integer THEN
    INSERT INTO dependency_cascade (parent_id, parent_is_batch) VALUES (NEW.id, v_batch) ON CONFLICT DO NOTHING;
  ELSE
    PERFORM jobline_resolve_dependents(NEW.id, NEW.status::text = 'succeeded');
  END IF;
  RETURN NULL;
END
$fn$;--> statement-breakpoint
CREATE TRIGGER jobs_parent_finished AFTER UPDATE OF status ON jobs FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('succeeded', 'failed', 'cancelled'))
  EXECUTE FUNCTION jobline_parent_finished();--> statement-breakpoint
CREATE TRIGGER batches_parent_finished AFTER UPDATE OF status ON batches FOR EACH ROW
  WHEN (OLD.status IS DISTINCT FROM NEW.status AND NEW.status IN ('succeeded', 'failed', 'partially_succeeded', 'cancelled'))
  EXECUTE FUNCTION jobline_parent_finished();--> statement-breakpoint
-- One step of a cascade: resolves the dependents of up to p_limit queued parents, and theirs down
-- to trigger depth 8 (jobline.cascade_levels, local to this transaction); deeper ones are queued again.
-- SKIP LOCKED: every worker process may run it at once.
CREATE FUNCTION jobline_continue_cascade(p_limit integer) RETURNS integer
LANGUAGE plpgsql AS $fn$
DECLARE
  r record;
  v_n integer := 0;
BEGIN
  PERFORM set_config('jobline.cascade_levels', '8', true);
  FOR r IN
    DELETE FROM dependency_cascade WHERE parent_id IN (
      SELECT parent_id FROM dependency_cascade ORDER BY created_at LIMIT p_limit FOR UPDATE SKIP LOCKED)
    RETURNING parent_id, parent_is_batch
  LOOP
    v_n := v_n + 1;
    PERFORM jobline_resolve_dependents(r.parent_id, coalesce(CASE WHEN r.parent_is_batch
      THEN (SELECT status::text = 'succeeded' FROM batches WHERE id = r.parent_id)
      ELSE (SELECT status::text = 'succeeded' FROM jobs WHERE id = r.parent_id) END, false));
  END LOOP;
  RETURN v_n;
END
$fn$;
