import type { Queryable } from "../../db/client.js";
import { BATCH_STATUSES } from "../../domain/batches.js";
import { batchGuard, batchIs, heldTagValue, jobGuard, scoped, tagged } from "../sql.js";
import type { BatchRow } from "./rows.js";

// Every guarded write of a batch row, named after its guard. Each returns the row it
// changed, or null when the guard lost. Finalisation is shared with jobs (jobs/finalise.ts).

/** A new open batch that already counts the `n` jobs its creator inserts in the same transaction. */
export async function create(
  a: { tenant: string; webhookUrl: string | null; jobs: number; sealWithinSeconds: number | null },
  q: Queryable,
): Promise<BatchRow> {
  const rows = await q<BatchRow[]>`
        INSERT INTO batches (tenant, webhook_url, status, total, remaining, seal_by)
        VALUES (${a.tenant}, ${a.webhookUrl}, ${BATCH_STATUSES[0]}, ${a.jobs}, ${a.jobs},
                now() + make_interval(secs => ${a.sealWithinSeconds}::int))
        RETURNING *`;
  return rows[0]!;
}

/**
 * Counts `n` more jobs into a `preparing` batch. The UPDATE's row lock is
 * held until the caller's transaction (which inserts the jobs) commits, so
 * a seal, itself an UPDATE guarded by status = 'preparing', waits for it and
 * then sees the new total; an add that comes after the seal finds no row.
 */
export async function reserveIfPreparing(id: string, tenant: string | null, n: number, q: Queryable): Promise<BatchRow | null> {
  const rows = await q<BatchRow[]>`
        UPDATE batches SET total = total + ${n}, remaining = remaining + ${n}, updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${batchGuard(q, "addJobs")} ${scoped(q, tenant)}
        RETURNING *`;
  return rows[0] ?? null;
}

/** preparing → pending. */
export async function sealIfPreparing(id: string, tenant: string | null, q: Queryable): Promise<BatchRow | null> {
  const rows = await q<BatchRow[]>`
        UPDATE batches SET status = 'pending', sealed_at = now(), updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${batchGuard(q, "seal")} ${scoped(q, tenant)}
        RETURNING *`;
  return rows[0] ?? null;
}

/** Marks a sealed, unfinished batch of the generation the caller locked the jobs of. */
export async function requestCancelIfUnfinished(id: string, generation: number, q: Queryable): Promise<BatchRow | null> {
  const rows = await q<BatchRow[]>`
        -- A repeated cancel changes nothing: neither version (the ETag) nor updatedAt moves.
        UPDATE batches SET cancel_requested = true,
               updated_at = CASE WHEN cancel_requested THEN updated_at ELSE now() END,
               version = version + (CASE WHEN cancel_requested THEN 0 ELSE 1 END)
        WHERE id = ${id} AND generation = ${generation} AND ${batchGuard(q, "cancel")}
        RETURNING *`;
  return rows[0] ?? null;
}

/**
 * One open batch past its seal_by, marked as cancelIfPreparing marks (sealed, cancel
 * requested) in the same guarded statement: a seal or cancel that commits first wins.
 */
export async function cancelOneUnsealed(q: Queryable): Promise<BatchRow | null> {
  const rows = await q<BatchRow[]>`
        UPDATE batches SET status = 'pending', sealed_at = now(), cancel_requested = true,
               updated_at = now(), version = version + 1
        WHERE id = (SELECT id FROM batches WHERE ${batchIs(q, "cancelOpen", "status")} AND seal_by IS NOT NULL AND seal_by < now()
                    ORDER BY seal_by LIMIT 1 FOR UPDATE SKIP LOCKED)
          AND ${batchIs(q, "cancelOpen", "status")} AND seal_by < now()
        RETURNING *`;
  return rows[0] ?? null;
}

/** Cancel of an open batch: it is sealed as it is marked, so no add can follow. */
export async function cancelIfPreparing(id: string, tenant: string | null, q: Queryable): Promise<BatchRow | null> {
  const rows = await q<BatchRow[]>`
        UPDATE batches SET status = 'pending', sealed_at = now(), cancel_requested = true,
               updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${batchIs(q, "cancelOpen", "status")} ${scoped(q, tenant)}
        RETURNING *`;
  return rows[0] ?? null;
}

/**
 * failed | cancelled jobs → queued with attempts reset, and the batch →
 * pending with generation + 1, in one statement. The batch row is locked
 * first; its jobs are all terminal, which nothing but this statement
 * changes, so no job-first locker can be waiting on them. Counters move by
 * exactly the jobs requeued, so remaining stays the count of unfinished
 * jobs of the new generation.
 */
export async function retryIfFinished(
  id: string,
  tenant: string | null,
  q: Queryable,
): Promise<{ batch: BatchRow; queues: string[]; requeued: { failed: number; cancelled: number } } | null> {
  const rows = await q<(BatchRow & { queues: string[] | null; requeuedFailed: number; requeuedCancelled: number })[]>`
        WITH b0 AS (
          SELECT id, generation FROM batches
          WHERE id = ${id} AND ${batchGuard(q, "retry")} ${scoped(q, tenant)}
          FOR NO KEY UPDATE
        ), old AS (
          SELECT j.id, j.status FROM jobs j JOIN b0 ON j.batch_id = b0.id
          WHERE ${jobGuard(q, "batchRetry", "j.status")}
          FOR UPDATE OF j
        ), rq AS (
          UPDATE jobs SET status = 'queued', attempts = 0, generation = b0.generation + 1,
                 -- A job that never got a tag (cancelled while its batch was open, or held)
                 -- is held now, so the next promotion tags it.
                 fair_tag = CASE WHEN NOT ${tagged(q, "jobs")} THEN ${heldTagValue(q)} ELSE jobs.fair_tag END,
                 lease_token = NULL, lease_expires_at = NULL, worker_id = NULL, cancel_requested = false,
                 result = NULL, run_at = now(), started_at = NULL, finished_at = NULL,
                 updated_at = now(), version = jobs.version + 1
          FROM old, b0 WHERE jobs.id = old.id
          RETURNING jobs.queue
        ), n AS (
          SELECT count(*)::int AS n,
                 count(*) FILTER (WHERE status = 'failed')::int AS f,
                 count(*) FILTER (WHERE status = 'cancelled')::int AS c
          FROM old
        ), b AS (
          UPDATE batches SET status = 'pending', generation = batches.generation + 1,
                 remaining = batches.remaining + n.n,
                 failed_count = batches.failed_count - n.f, cancelled_count = batches.cancelled_count - n.c,
                 cancel_requested = false, started_at = NULL, finished_at = NULL,
                 updated_at = now(), version = batches.version + 1
          FROM b0, n WHERE batches.id = b0.id
          RETURNING batches.*
        )
        SELECT b.*, (SELECT array_agg(DISTINCT queue) FROM rq) AS queues,
               n.f AS requeued_failed, n.c AS requeued_cancelled
        FROM b, n`;
  const r = rows[0];
  if (!r) return null;
  const { queues, requeuedFailed, requeuedCancelled, ...batch } = r;
  return { batch, queues: queues ?? [], requeued: { failed: requeuedFailed, cancelled: requeuedCancelled } };
}
