import type { Queryable } from "../../db/client.js";
import { TERMINAL_JOB_STATUSES } from "../../domain/jobs.js";
import { batchGuard, heldTagValue, jobGuard, scoped, statusIn, tagged } from "../sql.js";
import type { JobRow } from "./rows.js";

// The operator's writes (retry, delete), each one statement over an array of ids: the single
// action passes one id, bulk passes a chunk, so both go through the same guard.

/** A retried job's new row, and the status it was retried from. */
export type RetriedRow = JobRow & { retriedFrom: "failed" | "cancelled" };


/**
 * failed | cancelled → queued: attempts reset, runAt now, retries + 1 (a new event identity).
 * A job of a batch moves its batch's counts: an unfinished batch keeps its status, a finished
 * one runs again with generation + 1 (its next finalisation sends a new batch.completed).
 * Batches are locked before jobs, in id order, as the batch retry does, so the two cannot
 * deadlock; a batch still open or being cancelled takes no retried job.
 */
export async function retryIfFailedOrCancelled(ids: string[], tenant: string | null, q: Queryable): Promise<RetriedRow[]> {
  if (ids.length === 0) return [];
  return q<RetriedRow[]>`
    WITH cand AS (
      SELECT id, batch_id FROM jobs WHERE id = ANY(${ids}::uuid[]) AND ${jobGuard(q, "retry")} ${scoped(q, tenant)}
    ), bl AS (
      SELECT b.id, b.generation, ${batchGuard(q, "reopen", "b.status")} AS reopen FROM batches b
      WHERE b.id IN (SELECT batch_id FROM cand WHERE batch_id IS NOT NULL)
        AND ((${batchGuard(q, "jobRetry", "b.status")} AND NOT b.cancel_requested) OR ${batchGuard(q, "reopen", "b.status")})
      ORDER BY b.id FOR NO KEY UPDATE OF b
    ), l AS (
      SELECT j.id, j.status, j.batch_id, bl.generation AS batch_generation, COALESCE(bl.reopen, false) AS reopen
      FROM jobs j LEFT JOIN bl ON bl.id = j.batch_id
      WHERE j.id IN (SELECT id FROM cand) AND ${jobGuard(q, "retry", "j.status")} ${scoped(q, tenant, "j.tenant")}
        AND (j.batch_id IS NULL OR j.generation = bl.generation)
      ORDER BY j.id FOR NO KEY UPDATE OF j
    ), rq AS (
      UPDATE jobs SET status = 'queued', attempts = 0, retries = jobs.retries + 1,
             generation = CASE WHEN l.reopen THEN l.batch_generation + 1 ELSE jobs.generation END,
             -- A job that never got a tag (cancelled while held or in an open batch) is held now: the next promotion tags it.
             fair_tag = CASE WHEN NOT ${tagged(q, "jobs")} THEN ${heldTagValue(q)} ELSE jobs.fair_tag END,
             lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, cancel_requested = false,
             result = NULL, run_at = now(), started_at = NULL, finished_at = NULL,
             updated_at = now(), version = jobs.version + 1
      FROM l WHERE jobs.id = l.id
      RETURNING jobs.*
    ), n AS (
      SELECT batch_id, bool_or(reopen) AS reopen, count(*)::int AS n,
             count(*) FILTER (WHERE status = 'failed')::int AS f,
             count(*) FILTER (WHERE status = 'cancelled')::int AS c
      FROM l WHERE batch_id IS NOT NULL GROUP BY batch_id
    ), b AS (
      UPDATE batches SET
        status = CASE WHEN n.reopen THEN 'running'::batch_status ELSE batches.status END,
        generation = batches.generation + (CASE WHEN n.reopen THEN 1 ELSE 0 END),
        remaining = batches.remaining + n.n,
        failed_count = batches.failed_count - n.f, cancelled_count = batches.cancelled_count - n.c,
        cancel_requested = CASE WHEN n.reopen THEN false ELSE batches.cancel_requested END,
        started_at = CASE WHEN n.reopen THEN COALESCE(batches.started_at, now()) ELSE batches.started_at END,
        finished_at = CASE WHEN n.reopen THEN NULL ELSE batches.finished_at END,
        updated_at = now(), version = batches.version + 1
      FROM n WHERE batches.id = n.batch_id
      RETURNING 1
    )
    SELECT rq.*, l.status AS retried_from FROM rq JOIN l ON l.id = rq.id`;
}

/**
 * Deletes finished jobs (rows locked in id order, as every multi-row writer does). A job of a
 * batch leaves the batch's counters as they were: they record what its jobs did.
 */
export async function deleteIfFinished(ids: string[], tenant: string | null, q: Queryable): Promise<string[]> {
  if (ids.length === 0) return [];
  const finished = (col: string) => statusIn(q, col, TERMINAL_JOB_STATUSES);
  const rows = await q<{ id: string }[]>`
    WITH l AS (
      SELECT id FROM jobs WHERE id = ANY(${ids}::uuid[]) AND ${finished("status")} ${scoped(q, tenant)}
      ORDER BY id FOR UPDATE
    )
    DELETE FROM jobs USING l WHERE jobs.id = l.id AND ${finished("jobs.status")}
    RETURNING jobs.id`;
  return rows.map((r) => r.id);
}
