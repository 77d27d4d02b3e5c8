import type postgres from "postgres";
import type { Queryable } from "../../db/client.js";
import { BATCH_OUTCOME_RULES, type BatchOutcomeCondition, batchFrom, TERMINAL_BATCH_STATUSES } from "../../domain/batches.js";
import type { BatchRow } from "../batches/rows.js";
import { batchGuard, quoted } from "../sql.js";

/** The batch outcome rules of src/domain as SQL WHENs over the given columns, one per line. */
function outcomeWhens(pad: string, c: { cancelRequested: string; succeeded: string; failed: string; total: string }) {
  const cond: Record<Exclude<BatchOutcomeCondition, "otherwise">, string> = {
    cancelRequested: c.cancelRequested,
    allSucceeded: `${c.succeeded} = ${c.total}`,
    someSucceeded: `${c.succeeded} > 0`,
    someFailed: `${c.failed} > 0`,
  };
  return BATCH_OUTCOME_RULES.map((r) =>
    r.when === "otherwise" ? `${pad}ELSE '${r.status}'::batch_status END` : `${pad}WHEN ${cond[r.when]} THEN '${r.status}'::batch_status`,
  ).join("\n");
}

const FINALISABLE = quoted(batchFrom("finalise"));

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
  return q.unsafe(FINALISE_TAIL_SQL);
}

/**
 * finaliseTail's text. drizzle/0013 holds a copy in jobline_resolve_dependents (a dependent
 * cancelled there is finalised like any job); test/integration/workflows.test.ts checks the two agree.
 */
export const FINALISE_TAIL_SQL = `
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
        WHEN b.remaining - fc.n > 0 OR b.status NOT IN (${FINALISABLE}) THEN b.status
${outcomeWhens("        ", { cancelRequested: "b.cancel_requested", succeeded: "b.succeeded_count + fc.s", failed: "b.failed_count + fc.f", total: "b.total" })},
      finished_at = CASE
        WHEN b.remaining - fc.n > 0 OR b.status NOT IN (${FINALISABLE}) THEN b.finished_at
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
      AND status IN (${quoted(TERMINAL_BATCH_STATUSES)})
    ON CONFLICT (subject_id, event_type, generation) DO NOTHING
    RETURNING 1
  )`;

/**
 * Finalises a sealed batch none of whose jobs is left (empty, or all terminal before the
 * seal or a retry). The same guard as finaliseTail's (remaining = 0, a finalisable status),
 * the same outcome rules and the same outbox identity, so whichever statement gets there
 * first is the only finaliser.
 */
export async function finaliseIfDone(id: string, q: Queryable): Promise<BatchRow | null> {
  const rows = await q<BatchRow[]>`
        WITH b AS (
          UPDATE batches SET
            status = CASE
${q.unsafe(outcomeWhens("              ", { cancelRequested: "cancel_requested", succeeded: "succeeded_count", failed: "failed_count", total: "total" }))},
            finished_at = now(), updated_at = now(), version = version + 1
          WHERE id = ${id} AND remaining = 0 AND ${batchGuard(q, "finalise")}
          RETURNING *
        ), ev AS (
          INSERT INTO webhook_outbox (tenant, subject_id, event_type, generation, url, data)
          SELECT tenant, id, 'batch.completed', generation, webhook_url, to_jsonb(b) FROM b
          WHERE webhook_url IS NOT NULL
          ON CONFLICT (subject_id, event_type, generation) DO NOTHING
          RETURNING 1
        )
        SELECT * FROM b`;
  return rows[0] ?? null;
}
