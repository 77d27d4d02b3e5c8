import type { Queryable } from "../db/client.js";
import { BATCH_STATUSES, type BatchStatus } from "../domain/batches.js";
import { JOB_STATUSES, type JobStatus } from "../domain/jobs.js";
import { batchGuard, finaliseTail, heldTagValue, jobGuard, openBatchTag, statusIn, tagged } from "./sql.js";

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

/** A batch that may still finalise; a finaliser only ever moves a batch out of these. */
const finalisable = (q: Queryable, column = "status") => batchGuard(q, "finalise", column);

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
    async reserveJobs(id: string, tenant: string | null, n: number, q: Queryable): Promise<BatchRow | null> {
      const rows = await q<BatchRow[]>`
        UPDATE batches SET total = total + ${n}, remaining = remaining + ${n}, updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${batchGuard(q, "addJobs")} ${scoped(q, tenant)}
        RETURNING *`;
      return rows[0] ?? null;
    },

    /** preparing → pending. */
    async seal(id: string, tenant: string | null, q: Queryable = sql): Promise<BatchRow | null> {
      const rows = await q<BatchRow[]>`
        UPDATE batches SET status = 'pending', sealed_at = now(), updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${batchGuard(q, "seal")} ${scoped(q, tenant)}
        RETURNING *`;
      return rows[0] ?? null;
    },

    /**
     * Finalises a sealed batch none of whose jobs is left (empty, or all
     * terminal before the seal or a retry). The same guard as finaliseTail's
     * (remaining = 0, a finalisable status) and the same outbox identity, so
     * whichever statement gets there first is the only finaliser.
     */
    async finaliseIfDone(id: string, q: Queryable = sql): Promise<BatchRow | null> {
      // Same outcome rule as finaliseTail in sql.ts; keep the two in step.
      const rows = await q<BatchRow[]>`
        WITH b AS (
          UPDATE batches SET
            status = CASE
              WHEN cancel_requested THEN 'cancelled'::batch_status
              WHEN succeeded_count = total THEN 'succeeded'::batch_status
              WHEN succeeded_count > 0 THEN 'partially_succeeded'::batch_status
              WHEN failed_count > 0 THEN 'failed'::batch_status
              ELSE 'cancelled'::batch_status END,
            finished_at = now(), updated_at = now(), version = version + 1
          WHERE id = ${id} AND remaining = 0 AND ${finalisable(q)}
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
    },

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

    /**
     * A sealed batch's jobs leave the open-batch tag for the held one; the next promotion
     * (any claiming process, at once after an empty claim) tags them as submits at that
     * moment. Run in the seal's transaction, which holds the batch row: SKIP LOCKED, because
     * the only other holder of such a job's lock is a single-job cancel, which locks the
     * batch after the job (waiting for it here would close a cycle). That cancel finishes
     * the job; if it rolls back instead, the reaper's releaseStragglers takes the job.
     */
    async releaseSealedJobs(id: string, q: Queryable): Promise<number> {
      const rows = await q`
        WITH c AS (
          SELECT id FROM jobs
          WHERE batch_id = ${id} AND status = 'queued' AND ${openBatchTag(q, "jobs")}
          FOR UPDATE SKIP LOCKED
        )
        UPDATE jobs SET fair_tag = ${heldTagValue(q)}
        FROM c WHERE jobs.id = c.id
        RETURNING 1`;
      return rows.length;
    },

    /**
     * The same for jobs a seal left behind: skipped under a cancel that then rolled back,
     * or sealed by a release from before open-batch tags (rolling upgrades). A job of a batch
     * cancelled while open is cancelled here instead, with its batch's count and events (the
     * cancel skipped it the same way): released, it would have run in a cancelled batch. The
     * reaper runs it; SKIP LOCKED lets every worker process do so at once. The open batches
     * are found by skipping from one batch id to the next in jobs_preparing_idx (one probe per
     * open batch, not one per job: 100,000 open-batch jobs made a plain join take 40-70 ms).
     * Returns the jobs' queues and new statuses.
     */
    async releaseStragglers(limit: number, q: Queryable = sql): Promise<Array<{ queue: string; status: JobStatus }>> {
      const open = (t: string) => q`${q.unsafe(`${t}.status = 'queued'`)} AND ${openBatchTag(q, t)}`;
      return q<Array<{ queue: string; status: JobStatus }>>`
        WITH sealed AS (
          -- A cancel of an open batch seals it and marks it in one statement, so a batch
          -- seen here sealed and not marked was sealed by a seal: its jobs are to run.
          SELECT b.id, b.cancel_requested FROM batches b JOIN (
            -- Recursive on its own: WITH RECURSIVE over the whole statement would let every
            -- item refer to every other, which PostgreSQL refuses for the finalisation tail.
            WITH RECURSIVE ids AS (
              (SELECT j.batch_id FROM jobs j WHERE ${open("j")} ORDER BY j.batch_id LIMIT 1)
              UNION ALL
              SELECT (SELECT j.batch_id FROM jobs j WHERE ${open("j")} AND j.batch_id > ids.batch_id ORDER BY j.batch_id LIMIT 1)
              FROM ids WHERE ids.batch_id IS NOT NULL
            ) SELECT batch_id FROM ids
          ) ids ON b.id = ids.batch_id
          WHERE b.status <> 'preparing'
        ), c AS (
          SELECT j.id, s.cancel_requested AS cancel FROM jobs j JOIN sealed s ON j.batch_id = s.id
          WHERE ${open("j")}
          LIMIT ${limit}
          FOR UPDATE OF j SKIP LOCKED
        ), j AS (
          UPDATE jobs SET
            fair_tag = CASE WHEN c.cancel THEN jobs.fair_tag ELSE ${heldTagValue(q)} END,
            status = CASE WHEN c.cancel THEN 'cancelled'::job_status ELSE jobs.status END,
            finished_at = CASE WHEN c.cancel THEN now() ELSE jobs.finished_at END,
            updated_at = CASE WHEN c.cancel THEN now() ELSE jobs.updated_at END,
            version = CASE WHEN c.cancel THEN jobs.version + 1 ELSE jobs.version END
          FROM c WHERE jobs.id = c.id AND ${jobGuard(q, "cancel", "jobs.status")}
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j WHERE status = 'cancelled'),
        ${finaliseTail(q)}
        SELECT queue, status FROM j`;
    },

    /** The queues that have claimable jobs of this batch, to wake their long-pollers. */
    async queuedQueues(id: string, q: Queryable = sql): Promise<string[]> {
      const rows = await q<{ queue: string }[]>`
        SELECT DISTINCT queue FROM jobs WHERE batch_id = ${id} AND status = 'queued'`;
      return rows.map((r) => r.queue);
    },

    /**
     * Locks every unfinished job of a sealed batch, in id order; while held,
     * no job of the batch can move between queued and running. Jobs are locked
     * before their batch, as claim, complete, fail and the reaper do. A caller
     * that locks several jobs in another order (the multi-complete) could
     * still close a cycle with us, so the wait is bounded: past `lockTimeoutMs`
     * this fails with 55P03 and the caller's transaction (holding nothing but
     * these job locks) is rolled back and re-run, instead of one side being
     * picked as a deadlock victim a second later.
     */
    async lockUnfinishedJobs(id: string, lockTimeoutMs: number, q: Queryable): Promise<number> {
      const [prev] = await q<{ v: string }[]>`SELECT current_setting('lock_timeout') AS v`;
      await q`SELECT set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)`;
      const rows = await q`
        SELECT id FROM jobs WHERE batch_id = ${id} AND ${statusIn(q, "status", ["queued", "running"])}
        ORDER BY id FOR UPDATE`;
      await q`SELECT set_config('lock_timeout', ${prev!.v}, true)`;
      return rows.length;
    },

    /** Marks a sealed, unfinished batch of the generation the caller locked the jobs of. */
    async requestCancel(id: string, generation: number, q: Queryable): Promise<BatchRow | null> {
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
    async cancelPreparing(id: string, tenant: string | null, q: Queryable): Promise<BatchRow | null> {
      const rows = await q<BatchRow[]>`
        UPDATE batches SET status = 'pending', sealed_at = now(), cancel_requested = true,
               updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${batchGuard(q, "cancel")} AND status = 'preparing' ${scoped(q, tenant)}
        RETURNING *`;
      return rows[0] ?? null;
    },

    /**
     * queued → cancelled for every queued job of the batch, one statement
     * through finaliseTail (counters, job events, and the batch's completion
     * if these were its last jobs). `skipLocked`: a queued job of an open
     * batch can only be locked by a single-job cancel, which finishes it anyway.
     */
    async cancelQueuedJobs(id: string, opts: { skipLocked: boolean }, q: Queryable): Promise<number> {
      const rows = await q<{ n: number }[]>`
        WITH c AS (
          SELECT id FROM jobs WHERE batch_id = ${id} AND ${jobGuard(q, "cancel")}
          ORDER BY id FOR UPDATE ${opts.skipLocked ? q`SKIP LOCKED` : q``}
        ), j AS (
          UPDATE jobs SET status = 'cancelled', finished_at = now(), updated_at = now(), version = jobs.version + 1
          FROM c WHERE jobs.id = c.id AND ${jobGuard(q, "cancel", "jobs.status")}
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j),
        ${finaliseTail(q)}
        SELECT count(*)::int AS n FROM j`;
      return rows[0]!.n;
    },

    /** running → running with cancelRequested: each lease holder learns of it on heartbeat, fail or reap. */
    async requestCancelRunningJobs(id: string, q: Queryable): Promise<number> {
      const rows = await q`
        UPDATE jobs SET cancel_requested = true, updated_at = now(), version = version + 1
        WHERE batch_id = ${id} AND ${jobGuard(q, "requestCancel")} AND NOT cancel_requested
        RETURNING id`;
      return rows.length;
    },

    /**
     * failed | cancelled jobs → queued with attempts reset, and the batch →
     * pending with generation + 1, in one statement. The batch row is locked
     * first; its jobs are all terminal, which nothing but this statement
     * changes, so no job-first locker can be waiting on them. Counters move by
     * exactly the jobs requeued, so remaining stays the count of unfinished
     * jobs of the new generation.
     */
    async retry(
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
