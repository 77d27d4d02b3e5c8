import type { Queryable } from "../../db/client.js";
import { appendError, heldTagValue, jobGuard, scoped } from "../sql.js";
import { HOLD_AHEAD_MS } from "./fairness.js";
import { finaliseTail } from "./finalise.js";
import type { CompleteItem, JobRow, LeanJobRow } from "./rows.js";

// Every guarded write of one job after its claim (claim.ts), in the order of the transition
// table in src/domain/jobs.ts. Each returns the row it changed, or null when the guard lost.
// The writes of a batch's jobs are in batchJobs.ts.

const atVersion = (q: Queryable, version: number | undefined) => (version === undefined ? q`` : q`AND version = ${version}`);

/**
 * queued → cancelled, with the batch count and events (finaliseTail). Over an array of ids:
 * the single cancel passes one, bulk cancel a chunk (rows locked in id order).
 */
export async function cancelIfQueued(ids: string[], tenant: string | null, version: number | undefined, q: Queryable) {
  if (ids.length === 0) return [];
  return q<JobRow[]>`
        WITH l AS (
          SELECT id FROM jobs
          WHERE id = ANY(${ids}::uuid[]) AND ${jobGuard(q, "cancel")}
            ${scoped(q, tenant)}
            ${atVersion(q, version)}
          ORDER BY id FOR NO KEY UPDATE
        ), j AS (
          UPDATE jobs SET status = 'cancelled', finished_at = now(), updated_at = now(), version = jobs.version + 1
          FROM l WHERE jobs.id = l.id
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j),
        ${finaliseTail(q)}
        SELECT * FROM j`;
}

/** running → running with cancelRequested; the lease holder learns of it on heartbeat. Array form as above. */
export async function requestCancelIfRunning(ids: string[], tenant: string | null, version: number | undefined, q: Queryable) {
  if (ids.length === 0) return [];
  return q<JobRow[]>`
        WITH l AS (
          SELECT id FROM jobs
          WHERE id = ANY(${ids}::uuid[]) AND ${jobGuard(q, "requestCancel")}
            ${scoped(q, tenant)}
            ${atVersion(q, version)}
          ORDER BY id FOR NO KEY UPDATE
        )
        UPDATE jobs SET cancel_requested = true,
               -- A repeated request changes nothing, so neither version nor updated_at moves.
               updated_at = CASE WHEN jobs.cancel_requested THEN jobs.updated_at ELSE now() END,
               version = jobs.version + (CASE WHEN jobs.cancel_requested THEN 0 ELSE 1 END)
        FROM l WHERE jobs.id = l.id
        RETURNING jobs.*`;
}

/**
 * running → running with a later lease expiry (never past the attempt's deadline), fenced by
 * the lease token; refused once the deadline has passed, even before the reaper ends the attempt.
 * `progress` (already validated) replaces the stored one in the same statement, so only the
 * lease holder can write it.
 */
export async function heartbeatIfLeased(
  id: string,
  leaseToken: string,
  leaseSeconds: number,
  tenant: string | null,
  q: Queryable,
  progress?: object,
) {
  const p = progress === undefined ? null : JSON.stringify(progress);
  const rows = await q<JobRow[]>`
        UPDATE jobs SET lease_expires_at = LEAST(now() + make_interval(secs => ${leaseSeconds}), deadline_at),
               progress = coalesce(${p}::text::jsonb || jsonb_build_object('at', now()), progress),
               updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${jobGuard(q, "heartbeat")} AND lease_token = ${leaseToken}
          AND (deadline_at IS NULL OR deadline_at > now())
          ${scoped(q, tenant)}
        RETURNING *`;
  return rows[0] ?? null;
}

/** running → succeeded, fenced by the lease token; batch count and outbox in the same statement. */
export async function completeIfLeased(id: string, leaseToken: string, result: unknown, tenant: string | null, q: Queryable) {
  const rows = await q<JobRow[]>`
        WITH j AS (
          UPDATE jobs SET status = 'succeeded', result = ${JSON.stringify(result ?? null)}::text::jsonb,
                 finished_at = now(), updated_at = now(), version = version + 1
          WHERE id = ${id} AND ${jobGuard(q, "complete")} AND lease_token = ${leaseToken}
            ${scoped(q, tenant)}
          RETURNING *
        ), fin AS (SELECT * FROM j),
        ${finaliseTail(q)}
        SELECT * FROM j`;
  return rows[0] ?? null;
}

/**
 * The acknowledgement's CTEs: completed_items (each item's row locked if still leased by its
 * token), j (those rows made succeeded), then the finalisation tail (batch counts, events).
 * Why it is written this way: docs/performance-notes.md.
 */
export function completeCtes(items: CompleteItem[], tenant: string | null, q: Queryable) {
  const ids = items.map((i) => i.id);
  return q`completed_items AS (
          -- The guard is checked on each row as it is locked, in id order; one primary-key probe
          -- per item (LATERAL ... LIMIT 1). Why: docs/performance-notes.md, "Acknowledgement".
          SELECT l.id, i.result
          FROM (SELECT * FROM unnest(${ids}::uuid[], ${items.map((i) => i.leaseToken)}::uuid[],
                                     ${items.map((i) => JSON.stringify(i.result ?? null))}::text[]::jsonb[])
                  AS t(id, lease_token, result)
                ORDER BY id
                -- Changes no result: keeps the generic plan (docs/performance-notes.md, "Acknowledgement").
                LIMIT ${items.length}) i
          CROSS JOIN LATERAL (
            SELECT jobs.id FROM jobs
            WHERE jobs.id = i.id AND ${jobGuard(q, "complete", "jobs.status")} AND jobs.lease_token = i.lease_token
              ${scoped(q, tenant, "jobs.tenant")}
            LIMIT 1 FOR NO KEY UPDATE OF jobs
          ) l
        ), j AS (
          UPDATE jobs SET status = 'succeeded', result = completed_items.result,
                 finished_at = now(), updated_at = now(), version = jobs.version + 1
          -- = ANY(ARRAY[id]): one primary-key probe per locked row in every plan
          -- (docs/performance-notes.md, "Finding a locked row again").
          FROM completed_items WHERE jobs.id = ANY(ARRAY[completed_items.id])
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j),
        ${finaliseTail(q)}`;
}

/**
 * running → succeeded for many jobs in one statement (the batch acknowledgement). Each item
 * is fenced by its own token; the ones that lost are simply absent from the result. `lean`:
 * only id, lease token and status back (a worker that needs no more parses a tenth of the bytes).
 */
export async function completeManyIfLeased<Lean extends boolean = false>(
  items: CompleteItem[],
  tenant: string | null,
  q: Queryable,
  lean?: Lean,
): Promise<Lean extends true ? LeanJobRow[] : JobRow[]> {
  if (items.length === 0) return [];
  // (test/integration/plan-stability.test.ts finds this statement by the name completed_items.)
  return q<JobRow[]>`
        WITH ${completeCtes(items, tenant, q)}
        SELECT ${lean ? q`id, lease_token, status, tenant, queue, kind, started_at, finished_at, updated_at, traceparent, tracestate` : q`*`} FROM j`;
}

export interface FailArgs {
  leaseToken: string;
  error: unknown;
  retryable: boolean;
  retryAfterSeconds?: number | undefined;
  backoffBaseMs: number;
  backoffMaxMs: number;
  /** In [0,1): drives full-jitter backoff. */
  jitter: number;
  tenant: string | null;
}

/**
 * running → queued (retry after backoff) | failed | cancelled, decided in the statement from
 * the locked row's own attempts and cancelRequested (its latest version, not a prior read),
 * so a cancel request that commits while we wait for the lock is honoured.
 */
export async function failIfLeased(id: string, a: FailArgs, q: Queryable) {
  const retryDelayMs =
    a.retryAfterSeconds !== undefined
      ? q`${a.retryAfterSeconds * 1000}::float8`
      : q`${a.jitter}::float8 * LEAST(${a.backoffMaxMs}::float8, ${a.backoffBaseMs}::float8 * power(2, GREATEST(attempts - 1, 0)))`;
  const next = q`(CASE WHEN jobs.cancel_requested THEN 'cancelled'::job_status
                           WHEN ${a.retryable}::boolean AND jobs.attempts < jobs.max_attempts THEN 'queued'::job_status
                           ELSE 'failed'::job_status END)`;
  const rows = await q<JobRow[]>`
        WITH j AS (
          UPDATE jobs SET status = ${next},
                 last_error = ${JSON.stringify(a.error)}::text::jsonb,
                 errors = ${appendError(q, q`${JSON.stringify(a.error)}::text::jsonb->'code'`, q`${JSON.stringify(a.error)}::text::jsonb->'message'`)},
                 run_at = CASE WHEN ${next} = 'queued' THEN now() + make_interval(secs => (${retryDelayMs}) / 1000.0) ELSE jobs.run_at END,
                 -- A retry further ahead than HOLD_AHEAD_MS is held like a scheduled submit, so an
                 -- outage that sends many jobs into long backoff does not slow every claim.
                 fair_tag = CASE WHEN ${next} = 'queued' AND (${retryDelayMs}) > ${HOLD_AHEAD_MS}
                                 THEN ${heldTagValue(q)} ELSE jobs.fair_tag END,
                 lease_token = CASE WHEN ${next} = 'queued' THEN NULL ELSE jobs.lease_token END,
                 lease_expires_at = CASE WHEN ${next} = 'queued' THEN NULL ELSE jobs.lease_expires_at END,
                 finished_at = CASE WHEN ${next} = 'queued' THEN NULL ELSE now() END,
                 updated_at = now(), version = jobs.version + 1
          WHERE jobs.id = ${id} AND ${jobGuard(q, "fail", "jobs.status")} AND jobs.lease_token = ${a.leaseToken}
            ${scoped(q, a.tenant, "jobs.tenant")}
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j WHERE status IN ('failed', 'cancelled')),
        ${finaliseTail(q)}
        SELECT * FROM j`;
  return rows[0] ?? null;
}

/**
 * running → queued for leases whose poll answer never reached the client (the connection closed
 * before the response was written). The attempt never ran, so it is given back (attempts - 1).
 * Fenced by each lease token: a job completed, failed, reaped or re-claimed meanwhile is left
 * alone, and so is one whose cancel was requested (the reaper ends it cancelled at lease expiry).
 * Rows are locked in id order, as every multi-row writer does.
 */
export async function releaseIfLeased(items: Array<{ id: string; leaseToken: string }>, q: Queryable): Promise<JobRow[]> {
  if (items.length === 0) return [];
  return q<JobRow[]>`
    WITH l AS (
      SELECT jobs.id FROM jobs
      JOIN unnest(${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.leaseToken)}::uuid[]) AS t(id, lease_token)
        ON jobs.id = t.id AND jobs.lease_token = t.lease_token
      WHERE ${jobGuard(q, "release", "jobs.status")} AND NOT jobs.cancel_requested
      ORDER BY jobs.id
      FOR NO KEY UPDATE OF jobs
    )
    UPDATE jobs SET status = 'queued', attempts = GREATEST(jobs.attempts - 1, 0), lease_token = NULL,
           lease_expires_at = NULL, updated_at = now(), version = jobs.version + 1
    FROM l WHERE jobs.id = l.id
    RETURNING jobs.*`;
}

/**
 * The lease reaper: every running job whose lease expired goes back to queued, or to
 * failed/cancelled, in ONE statement. SKIP LOCKED lets every replica run it at once; a job
 * being completed right now is skipped, and the guard re-checks the lease so a heartbeat
 * that just landed wins.
 */
export async function reapExpired(limit: number, q: Queryable): Promise<JobRow[]> {
  return q<JobRow[]>`
        WITH c AS (
          SELECT id FROM jobs
          -- attempts > 0 (true of every running job) lets the plan read jobs_slot_idx, not the table.
          WHERE ${jobGuard(q, "reap")} AND attempts > 0 AND lease_expires_at < now()
          ORDER BY lease_expires_at
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        ), j AS (
          UPDATE jobs SET
            status = CASE WHEN jobs.cancel_requested THEN 'cancelled'::job_status
                          WHEN jobs.attempts < jobs.max_attempts THEN 'queued'::job_status
                          ELSE 'failed'::job_status END,
            -- Also when the job ends cancelled: the error of an attempt before would let the
            -- holder's late fail with that same error pass for a replay of its own call.
            -- The lease is capped at the deadline (claim.ts), so a timed-out attempt is reaped here too.
            last_error = CASE WHEN jobs.deadline_at <= now()
                              THEN jsonb_build_object('message', 'execution timed out', 'code', 'timeout')
                              ELSE jsonb_build_object('message', 'lease expired', 'code', 'lease_expired') END,
            errors = ${appendError(
              q,
              q`CASE WHEN jobs.deadline_at <= now() THEN '"timeout"'::jsonb ELSE '"lease_expired"'::jsonb END`,
              q`CASE WHEN jobs.deadline_at <= now() THEN '"execution timed out"'::jsonb ELSE '"lease expired"'::jsonb END`,
            )},
            lease_token = CASE WHEN jobs.cancel_requested OR jobs.attempts >= jobs.max_attempts THEN jobs.lease_token END,
            lease_expires_at = CASE WHEN jobs.cancel_requested OR jobs.attempts >= jobs.max_attempts THEN jobs.lease_expires_at END,
            finished_at = CASE WHEN jobs.cancel_requested OR jobs.attempts >= jobs.max_attempts THEN now() END,
            updated_at = now(), version = jobs.version + 1
          FROM c
          WHERE jobs.id = c.id AND ${jobGuard(q, "reap", "jobs.status")} AND jobs.lease_expires_at < now()
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j WHERE status IN ('failed', 'cancelled')),
        ${finaliseTail(q)}
        SELECT * FROM j`;
}

/**
 * queued → cancelled for jobs past their expiresAt (lastError.code expired), with batch counts
 * and events. The claim's `expires_at > now()` and this `<= now()` split every instant, and
 * both lock the row, so of a claim and an expiry at once exactly one wins.
 */
export async function expireDue(limit: number, q: Queryable): Promise<JobRow[]> {
  return q<JobRow[]>`
        WITH c AS (
          SELECT id FROM jobs
          WHERE ${jobGuard(q, "expire")} AND expires_at IS NOT NULL AND expires_at <= now()
          ORDER BY expires_at
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        ), j AS (
          UPDATE jobs SET status = 'cancelled',
                 last_error = jsonb_build_object('message', 'expired before it started', 'code', 'expired'),
                 finished_at = now(), updated_at = now(), version = jobs.version + 1
          FROM c
          WHERE jobs.id = c.id AND ${jobGuard(q, "expire", "jobs.status")} AND jobs.expires_at <= now()
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j),
        ${finaliseTail(q)}
        SELECT * FROM j`;
}
