import type { Queryable } from "../../db/client.js";
import { JOB_TRANSITIONS, type JobStatus } from "../../domain/jobs.js";
import { batchIs, heldTagValue, jobGuard, openBatchTag, statusIn } from "../sql.js";
import { finaliseTail } from "./finalise.js";

// The guarded writes of the jobs of one batch (by batch id), run by the batch use cases
// inside their transaction. Jobs are locked before their batch, as every job writer does.

/**
 * A sealed batch's queued jobs leave the open-batch tag for the held one; the next promotion
 * (any claiming process, at once after an empty claim) tags them as submits at that
 * moment. Run in the seal's transaction, which holds the batch row: SKIP LOCKED, because
 * the only other holder of such a job's lock is a single-job cancel, which locks the
 * batch after the job (waiting for it here would close a cycle). That cancel finishes
 * the job; if it rolls back instead, the reaper's releaseStragglers takes the job.
 */
export async function releaseQueuedOfSealed(id: string, q: Queryable): Promise<number> {
  const rows = await q`
        WITH c AS (
          SELECT id FROM jobs
          WHERE batch_id = ${id} AND ${jobGuard(q, "claim")} AND ${openBatchTag(q, "jobs")}
          FOR UPDATE SKIP LOCKED
        )
        UPDATE jobs SET fair_tag = ${heldTagValue(q)}
        FROM c WHERE jobs.id = c.id
        RETURNING 1`;
  return rows.length;
}

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
export async function releaseStragglers(limit: number, q: Queryable): Promise<Array<{ queue: string; status: JobStatus }>> {
  const open = (t: string) => q`${jobGuard(q, "claim", `${t}.status`)} AND ${openBatchTag(q, t)}`;
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
          WHERE NOT ${batchIs(q, "addJobs", "b.status")}
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
}

/**
 * Locks every unfinished job of a sealed batch (queued or running: the claim's two ends), in id
 * order; while held, no job of the batch can move between queued and running. A caller that
 * locks several jobs in another order (the multi-complete) could still close a cycle with us, so the wait is bounded: past
 * `lockTimeoutMs` this fails with 55P03 and the caller's transaction (holding nothing but
 * these job locks) is rolled back and re-run, instead of one side being picked as a
 * deadlock victim a second later.
 */
export async function lockUnfinishedOfBatch(id: string, lockTimeoutMs: number, q: Queryable): Promise<number> {
  const [prev] = await q<{ v: string }[]>`SELECT current_setting('lock_timeout') AS v`;
  await q`SELECT set_config('lock_timeout', ${`${lockTimeoutMs}ms`}, true)`;
  const rows = await q`
        SELECT id FROM jobs WHERE batch_id = ${id} AND ${statusIn(q, "status", [...JOB_TRANSITIONS.claim.from, ...JOB_TRANSITIONS.claim.to])}
        ORDER BY id FOR UPDATE`;
  await q`SELECT set_config('lock_timeout', ${prev!.v}, true)`;
  return rows.length;
}

/**
 * queued → cancelled for every queued job of the batch, one statement through finaliseTail
 * (counters, job events, and the batch's completion if these were its last jobs).
 * `skipLocked`: a queued job of an open batch can only be locked by a single-job cancel,
 * which finishes it anyway. Returns how many, and their queues (a cancelled retry frees its key's turn).
 */
export async function cancelQueuedOfBatch(
  id: string,
  opts: { skipLocked: boolean; error?: { message: string; code: string } },
  q: Queryable,
): Promise<{ n: number; queues: string[] }> {
  const rows = await q<{ n: number; queues: string[] }[]>`
        WITH c AS (
          SELECT id FROM jobs WHERE batch_id = ${id} AND ${jobGuard(q, "cancel")}
          ORDER BY id FOR UPDATE ${opts.skipLocked ? q`SKIP LOCKED` : q``}
        ), j AS (
          UPDATE jobs SET status = 'cancelled', finished_at = now(), updated_at = now(), version = jobs.version + 1,
                 last_error = coalesce(${opts.error ? JSON.stringify(opts.error) : null}::text::jsonb, jobs.last_error)
          FROM c WHERE jobs.id = c.id AND ${jobGuard(q, "cancel", "jobs.status")}
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j),
        ${finaliseTail(q)}
        SELECT count(*)::int AS n, coalesce(array_agg(DISTINCT j.queue), '{}') AS queues FROM j`;
  return rows[0]!;
}

/** running → running with cancelRequested: each lease holder learns of it on heartbeat, fail or reap. */
export async function requestCancelRunningOfBatch(id: string, q: Queryable): Promise<number> {
  const rows = await q`
        UPDATE jobs SET cancel_requested = true, updated_at = now(), version = version + 1
        WHERE batch_id = ${id} AND ${jobGuard(q, "requestCancel")} AND NOT cancel_requested
        RETURNING id`;
  return rows.length;
}
