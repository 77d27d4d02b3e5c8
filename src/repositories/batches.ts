import type { Queryable } from "../db/client.js";
import { BATCH_STATUSES, type BatchStatus } from "../domain/batches.js";
import { JOB_STATUSES, type JobStatus } from "../domain/jobs.js";
import { finaliseIfDone } from "./jobs/finalise.js";
import { batchGuard, heldTagValue, jobGuard, tagged } from "./sql.js";

export interface BatchRow {
  id: string;
  tenant: string;
  status: BatchStatus;
  webhookUrl: string | null;
  generation: number;
  total: number;
  remaining: number;
  succeededCount: number;
  failedCount: number;
  cancelledCount: number;
  cancelRequested: boolean;
  createdAt: Date;
  updatedAt: Date;
  sealedAt: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  version: number;
}

export type BatchCounts = Record<JobStatus, number>;

/** A batch with its live job counts, read in one statement so both come from one snapshot. */
export type CountedBatch = BatchRow & { counts: BatchCounts };

export const zeroCounts = (): BatchCounts => Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as BatchCounts;

/** Keyset position of a batch list: created_at as exact text (microseconds survive, unlike a JS Date). */
export interface BatchCursor {
  createdAt: string;
  id: string;
}

const scoped = (q: Queryable, tenant: string | null, column = "tenant") =>
  tenant === null ? q`` : q`AND ${q.unsafe(column)} = ${tenant}`;

// The live counts: one GROUP BY over the jobs_batch_idx (batch_id, status) per batch.
const countsOf = (q: Queryable, batchIdColumn: string) => q`
  (SELECT coalesce(jsonb_object_agg(s.status, s.n), '{}'::jsonb)
   FROM (SELECT status, count(*)::int AS n FROM jobs WHERE batch_id = ${q.unsafe(batchIdColumn)} GROUP BY status) s)`;

function withCounts(r: BatchRow & { jobCounts: Partial<BatchCounts> }): CountedBatch {
  const { jobCounts, ...row } = r;
  return { ...row, counts: { ...zeroCounts(), ...jobCounts } };
}

export function batchesRepository(sql: Queryable) {
  return {
    /** A new open batch that already counts the `n` jobs its creator inserts in the same transaction. */
    async create(a: { tenant: string; webhookUrl: string | null; jobs: number }, q: Queryable = sql): Promise<BatchRow> {
      const rows = await q<BatchRow[]>`
        INSERT INTO batches (tenant, webhook_url, status, total, remaining)
        VALUES (${a.tenant}, ${a.webhookUrl}, ${BATCH_STATUSES[0]}, ${a.jobs}, ${a.jobs})
        RETURNING *`;
      return rows[0]!;
    },

    /**
     * Counts `n` more jobs into a `preparing` batch. The UPDATE's row lock is
     * held until the caller's transaction (which inserts the jobs) commits, so
     * a seal, itself an UPDATE guarded by status = 'preparing', waits for it and
     * then sees the new total; an add that comes after the seal finds no row.
     */
    async reserveIfPreparing(id: string, tenant: string | null, n: number, q: Queryable): Promise<BatchRow | null> {
      const rows = await q<BatchRow[]>`
        UPDATE batches SET total = total + ${n}, remaining = remaining + ${n}, updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${batchGuard(q, "addJobs")} ${scoped(q, tenant)}
        RETURNING *`;
      return rows[0] ?? null;
    },

    /** preparing → pending. */
    async sealIfPreparing(id: string, tenant: string | null, q: Queryable = sql): Promise<BatchRow | null> {
      const rows = await q<BatchRow[]>`
        UPDATE batches SET status = 'pending', sealed_at = now(), updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${batchGuard(q, "seal")} ${scoped(q, tenant)}
        RETURNING *`;
      return rows[0] ?? null;
    },

    /** Finalises a sealed batch none of whose jobs is left (see finalise.ts). */
    finaliseIfDone: (id: string, q: Queryable = sql) => finaliseIfDone(id, q),

    async findById(id: string, tenant: string | null, q: Queryable = sql): Promise<BatchRow | null> {
      const rows = await q<BatchRow[]>`SELECT * FROM batches WHERE id = ${id} ${scoped(q, tenant)}`;
      return rows[0] ?? null;
    },

    async findCounted(id: string, tenant: string | null, q: Queryable = sql): Promise<CountedBatch | null> {
      const rows = await q<(BatchRow & { jobCounts: Partial<BatchCounts> })[]>`
        SELECT b.*, ${countsOf(q, "b.id")} AS job_counts FROM batches b WHERE b.id = ${id} ${scoped(q, tenant, "b.tenant")}`;
      return rows[0] ? withCounts(rows[0]) : null;
    },

    /** Newest first; each row also carries the exact text of created_at for the next page's cursor. */
    async list(
      f: { tenant: string | null; status?: BatchStatus | undefined; limit: number; after?: BatchCursor | undefined },
      q: Queryable = sql,
    ): Promise<Array<CountedBatch & { cursor: BatchCursor }>> {
      const rows = await q<(BatchRow & { jobCounts: Partial<BatchCounts>; createdAtText: string })[]>`
        SELECT b.*, ${countsOf(q, "b.id")} AS job_counts,
               to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at_text
        FROM batches b
        WHERE true ${scoped(q, f.tenant, "b.tenant")}
          ${f.status === undefined ? q`` : q`AND b.status = ${f.status}`}
          ${f.after === undefined ? q`` : q`AND (b.created_at, b.id) < (${f.after.createdAt}::timestamptz, ${f.after.id}::uuid)`}
        ORDER BY b.created_at DESC, b.id DESC
        LIMIT ${f.limit}`;
      return rows.map(({ createdAtText, ...r }) => ({ ...withCounts(r), cursor: { createdAt: createdAtText, id: r.id } }));
    },

    /** Live job counts of one batch (inside a transaction: consistent with the row it just wrote). */
    async counts(id: string, q: Queryable = sql): Promise<BatchCounts> {
      const rows = await q<{ status: JobStatus; n: number }[]>`
        SELECT status, count(*)::int AS n FROM jobs WHERE batch_id = ${id} GROUP BY status`;
      const c = zeroCounts();
      for (const r of rows) c[r.status] = r.n;
      return c;
    },

    /** The queues that have claimable jobs of this batch, to wake their long-pollers. */
    async queuedQueues(id: string, q: Queryable = sql): Promise<string[]> {
      const rows = await q<{ queue: string }[]>`
        SELECT DISTINCT queue FROM jobs WHERE batch_id = ${id} AND status = 'queued'`;
      return rows.map((r) => r.queue);
    },

    /** Marks a sealed, unfinished batch of the generation the caller locked the jobs of. */
    async requestCancelIfUnfinished(id: string, generation: number, q: Queryable): Promise<BatchRow | null> {
      const rows = await q<BatchRow[]>`
        -- A repeated cancel changes nothing: neither version (the ETag) nor updatedAt moves.
        UPDATE batches SET cancel_requested = true,
               updated_at = CASE WHEN cancel_requested THEN updated_at ELSE now() END,
               version = version + (CASE WHEN cancel_requested THEN 0 ELSE 1 END)
        WHERE id = ${id} AND generation = ${generation} AND ${batchGuard(q, "cancel")} AND status <> 'preparing'
        RETURNING *`;
      return rows[0] ?? null;
    },

    /** Cancel of an open batch: it is sealed as it is marked, so no add can follow. */
    async cancelIfPreparing(id: string, tenant: string | null, q: Queryable): Promise<BatchRow | null> {
      const rows = await q<BatchRow[]>`
        UPDATE batches SET status = 'pending', sealed_at = now(), cancel_requested = true,
               updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${batchGuard(q, "cancel")} AND status = 'preparing' ${scoped(q, tenant)}
        RETURNING *`;
      return rows[0] ?? null;
    },

    /**
     * failed | cancelled jobs → queued with attempts reset, and the batch →
     * pending with generation + 1, in one statement. The batch row is locked
     * first; its jobs are all terminal, which nothing but this statement
     * changes, so no job-first locker can be waiting on them. Counters move by
     * exactly the jobs requeued, so remaining stays the count of unfinished
     * jobs of the new generation.
     */
    async retryIfFinished(
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
    },

    /** Jobs finished per minute over the last `minutes` minutes, every minute present (zeros included). */
    async throughput(tenant: string | null, minutes: number, q: Queryable = sql) {
      return q<{ minute: Date; succeeded: number; failed: number; cancelled: number }[]>`
        WITH span AS (
          SELECT date_trunc('minute', now()) - make_interval(mins => ${minutes - 1}) AS first,
                 date_trunc('minute', now()) AS last
        ), f AS (
          SELECT date_trunc('minute', finished_at) AS minute,
                 count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
                 count(*) FILTER (WHERE status = 'failed')::int AS failed,
                 count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled
          FROM jobs, span WHERE finished_at >= span.first ${scoped(q, tenant)}
          GROUP BY 1
        )
        SELECT m.minute, coalesce(f.succeeded, 0) AS succeeded, coalesce(f.failed, 0) AS failed,
               coalesce(f.cancelled, 0) AS cancelled
        FROM span, generate_series(span.first, span.last, interval '1 minute') AS m(minute)
        LEFT JOIN f ON f.minute = m.minute
        ORDER BY m.minute`;
    },
  };
}

export type BatchesRepository = ReturnType<typeof batchesRepository>;
