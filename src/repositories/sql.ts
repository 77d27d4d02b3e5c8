import type postgres from "postgres";
import { batchFrom } from "../domain/batches.js";
import { fromStatuses, type JobTransition, TERMINAL_JOB_STATUSES } from "../domain/jobs.js";
import type { Queryable } from "../db/client.js";
import { HELD_TAG, PREPARING_TAG } from "../db/schema.js";

/**
 * `status IN ('a','b')` built from the transition table. The literals come
 * from a constant table in src/domain, never from input, so inlining is safe
 * and keeps the statement prepared with a stable text.
 */
export function statusIn(q: Queryable, column: string, statuses: readonly string[]): postgres.PendingQuery<postgres.Row[]> {
  return q.unsafe(`${column} IN (${statuses.map((s) => `'${s}'`).join(",")})`);
}

export const jobGuard = (q: Queryable, t: JobTransition, column = "status") => statusIn(q, column, fromStatuses(t));
export const batchGuard = (q: Queryable, t: Parameters<typeof batchFrom>[0], column = "status") =>
  statusIn(q, column, batchFrom(t));

/**
 * Which partial index a queued job's fairness tag puts it in (see HELD_TAG and
 * PREPARING_TAG in the schema), written as the indexes' own predicates: literals, so
 * every plan, generic ones too, can use those indexes.
 */
export const tagged = (q: Queryable, alias: string) => q.unsafe(`${alias}.fair_tag < ${HELD_TAG}`);
export const heldTag = (q: Queryable, alias: string) =>
  q.unsafe(`${alias}.fair_tag >= ${HELD_TAG} AND ${alias}.fair_tag < ${PREPARING_TAG}`);
export const openBatchTag = (q: Queryable, alias: string) => q.unsafe(`${alias}.fair_tag >= ${PREPARING_TAG}`);
/** The held tag as a literal, for SET and CASE. */
export const heldTagValue = (q: Queryable) => q.unsafe(String(HELD_TAG));

export const TERMINAL_SQL_LIST = TERMINAL_JOB_STATUSES.map((s) => `'${s}'`).join(",");

/**
 * The tail every job-finalising statement shares. Given a CTE `fin` holding the
 * job rows that the statement just moved to a terminal state, it (a) counts
 * them into their batch, and the UPDATE that takes `remaining` to zero also sets
 * the batch's terminal status, (b) writes one outbox row per finalised job with
 * a webhook, (c) writes one `batch.completed` row for a batch it finalised.
 * All inside the same statement as the job transition, so an event exists
 * if and only if the finalisation committed.
 */
export function finaliseTail(q: Queryable): postgres.PendingQuery<postgres.Row[]> {
  return q.unsafe(`
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
    SELECT tenant, id, 'job.' || status::text, generation, webhook_url,
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
  )`);
}
