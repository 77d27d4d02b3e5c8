import postgres from "postgres";
import type { Queryable } from "../../db/client.js";
import { batchIs, heldTag, jobGuard, limitOf, limits, notExpired, notInOpenBatch, scoped, tagged, timeoutOf } from "../sql.js";
import { defaultsOf, gatedClaimableCtes, gateTime, rateLogCte, settingsOf } from "./gatedClaim.js";
import { allocateTags } from "./fairness.js";
import {
  byTaker,
  type ClaimedRow,
  type ClaimFields,
  type ClaimFilter,
  type CompleteItem,
  type JobRow,
  type LeanJobRow,
  type SharedClaimFilter,
  type Taker,
  WORKER_ROW_KEYS,
} from "./rows.js";
import { completeCtes } from "./transitions.js";
import type { JobStatus } from "../../domain/jobs.js";



/**
 * queued → running: candidates locked in claim order, passing over each other's (SKIP LOCKED).
 * gated: the text for queues with settings (gatedClaim.ts). The free text, for the rest, takes
 * nothing when any queue of the filter has settings: an uncorrelated NOT EXISTS, run once per
 * statement, so an uncapped queue pays one probe of a tiny table. The plan tests find claims
 * by the CTE name `claimable`.
 */
const claimableCte = (q: Queryable, f: SharedClaimFilter, total: number, gated: boolean) => {
  if (gated) return gatedClaimableCtes(q, f, total);
  const queueCond = f.queues.length === 1 ? q`j.queue = ${f.queues[0]!}` : q`j.queue = ANY(${f.queues}::text[])`;
  return q`
      claimable AS (
        SELECT j.id, j.priority, j.fair_tag FROM jobs j
        WHERE ${queueCond} AND ${jobGuard(q, "claim", "j.status")} AND ${tagged(q, "j")} AND j.run_at <= now()
          ${f.kinds && f.kinds.length > 0 ? q`AND j.kind = ANY(${f.kinds}::text[])` : q``}
          ${scoped(q, f.tenant, "j.tenant")}
          AND ${notInOpenBatch(q, "j")} AND ${notExpired(q, "j")}
          AND NOT EXISTS (${settingsOf(q, f)})
        ORDER BY j.priority DESC NULLS LAST, j.fair_tag, j.id
        LIMIT ${limitOf(q, total)}
        FOR UPDATE OF j SKIP LOCKED
      )`;
};

const WORKER_COLUMNS = WORKER_ROW_KEYS.map((k) => `jobs.${postgres.fromCamel(k)}`).join(", ");
/** The columns a claim returns: every one, or the worker's (rows.ts, ClaimFields). */
const returned = (q: Queryable, f: SharedClaimFilter) => (f.fields === "worker" ? q.unsafe(WORKER_COLUMNS) : q`jobs.*`);

/**
 * The lease a claim writes on each job it takes. The attempt's deadline (null without a timeout,
 * the job's or its queue's; LEAST skips nulls) also caps the lease, so the reaper's one
 * lease-expiry scan ends a timed-out attempt even while it heartbeats. `f`: the claim's filter,
 * so the queue-default probe runs only when one of its queues has a default.
 */
const lease = (q: Queryable, leaseSeconds: number, gated = false, f?: SharedClaimFilter) => {
  const timeout = () => timeoutOf(q, "jobs", f && defaultsOf(q, f));
  return q`status = 'running', attempts = jobs.attempts + 1, lease_token = gen_random_uuid(),
               deadline_at = now() + make_interval(secs => ${timeout()}),
               lease_expires_at = LEAST(now() + make_interval(secs => ${leaseSeconds}), now() + make_interval(secs => ${timeout()})),
               started_at = ${gated ? gateTime(q) : q`now()`}, updated_at = now(), version = jobs.version + 1`;
};

/**
 * pending → running for the batches of the jobs just claimed (CTE `u`). besideFinalisation: the
 * statement also finalises jobs (fin_counts); a batch with a running job left pending when its
 * first job was claimed, so the two never meet, and the guard keeps one statement from ever
 * updating a batch row twice, which PostgreSQL would not do reliably.
 */
const startBatches = (q: Queryable, besideFinalisation = false) => q`
      started AS (
        UPDATE batches SET status = 'running', started_at = now(), updated_at = now(), version = batches.version + 1
        WHERE batches.id IN (SELECT batch_id FROM u WHERE batch_id IS NOT NULL) AND ${batchIs(q, "start", "batches.status")}
          ${besideFinalisation ? q`AND batches.id NOT IN (SELECT batch_id FROM fin_counts)` : q``}
        RETURNING 1
      )`;

/** Several takers: row rn (in claim order) carries the worker id of the taker it goes to. */
const forTakers = (q: Queryable, f: SharedClaimFilter, takers: Taker[], gated: boolean, besideFinalisation = false) => {
  const workerIds = takers.flatMap((t) => Array<string>(t.max).fill(t.workerId));
  const total = takers.reduce((n, t) => n + t.max, 0);
  return q`
      ${claimableCte(q, f, total, gated)}, n AS (
        SELECT id, (row_number() OVER (ORDER BY priority DESC NULLS LAST, fair_tag, id))::int AS rn FROM claimable
      ), u AS (
        UPDATE jobs SET ${lease(q, f.leaseSeconds, gated, f)}, worker_id = (${workerIds}::text[])[n.rn]
        FROM n WHERE jobs.id = n.id AND jobs.id = ANY(ARRAY(SELECT id FROM claimable))
        RETURNING ${returned(q, f)}, n.rn
      ), ${startBatches(q, besideFinalisation)}${gated ? q`, ${rateLogCte(q)}` : q``}`;
};

/**
 * The same claim for several takers at once (coalesced polls): one statement leases up to
 * the sum of their `max`, in claim order, and taker i gets the next `max_i` rows with its own
 * worker id written on them. The UPDATE finds its rows by `= ANY` (docs/performance-notes.md).
 */
export async function claimNextFor<F extends ClaimFields | undefined = undefined>(
  f: SharedClaimFilter & { fields?: F },
  takers: Taker[],
  q: Queryable,
  gated = false,
): Promise<ClaimedRow<F>[][]> {
  type Row = ClaimedRow<F>;
  if (takers.length === 1) {
    // One taker (a worker's own claim, or a poll with no company): its worker id as one
    // value, not one array element per row, and the claim order from a sort of the result.
    return [
      await q<Row[]>`
          WITH ${claimableCte(q, f, takers[0]!.max, gated)}, u AS (
            UPDATE jobs SET ${lease(q, f.leaseSeconds, gated, f)}, worker_id = ${takers[0]!.workerId}
            WHERE jobs.id = ANY(ARRAY(SELECT id FROM claimable))
            RETURNING ${returned(q, f)}
          ), ${startBatches(q)}${gated ? q`, ${rateLogCte(q)}` : q``}
          SELECT * FROM u ORDER BY priority DESC NULLS LAST, fair_tag, id`,
    ];
  }
  return byTaker(await q<Array<Row & { rn: number }>>`WITH ${forTakers(q, f, takers, gated)} SELECT * FROM u`, takers);
}

/** queued → running for up to `max` jobs of the filter, one statement; jobs of an open batch excluded. */
export async function claimNext<F extends ClaimFields | undefined = undefined>(
  f: ClaimFilter & { fields?: F },
  q: Queryable,
  gated = false,
): Promise<ClaimedRow<F>[]> {
  const { workerId, max, ...filter } = f;
  return (await claimNextFor(filter, [{ workerId, max }], q, gated))[0]!;
}

/**
 * A poll's acknowledgements and the claim of its next jobs in one statement: one round trip,
 * one executor start and one commit instead of two of each. The rows are disjoint (the
 * acknowledged jobs are running, the claimed ones queued, in one snapshot), so a job
 * completed here is never claimed here. Acknowledgements come back lean, claims as claimNextFor's.
 */
export async function completeAndClaimFor<F extends ClaimFields | undefined = undefined>(
  items: CompleteItem[],
  f: SharedClaimFilter & { fields?: F },
  takers: Taker[],
  q: Queryable,
  gated = false,
): Promise<{ completed: LeanJobRow[]; claimed: ClaimedRow<F>[][] }> {
  type Acked = [string, string, JobStatus, string, string, string, string | null, string | null, string, string | null, string | null];
  type Row = ClaimedRow<F> & { rn: number | null; acked: Acked[] | null };
  // One row at least (the LEFT JOIN), so the acknowledgements come back when nothing was
  // claimed; they ride on the first row only.
  const rows = await q<Row[]>`
        WITH ${completeCtes(items, f.tenant, q)}, ${forTakers(q, f, takers, gated, true)}
        SELECT u.*, CASE WHEN u.rn IS NULL OR u.rn = 1 THEN
                 (SELECT coalesce(json_agg(json_build_array(j.id, j.lease_token, j.status, j.tenant, j.queue, j.kind,
                   j.started_at, j.finished_at, j.updated_at, j.traceparent, j.tracestate)), '[]'::json) FROM j)
               END AS acked
        FROM (SELECT) one LEFT JOIN u ON true`;
  const acked = rows.find((r) => r.acked !== null)?.acked ?? [];
  return {
    completed: acked.map(([id, leaseToken, status, tenant, queue, kind, startedAt, finishedAt, updatedAt, traceparent, tracestate]) => ({
      id,
      leaseToken,
      status,
      tenant,
      queue,
      kind,
      startedAt: startedAt === null ? null : new Date(startedAt),
      finishedAt: finishedAt === null ? null : new Date(finishedAt),
      updatedAt: new Date(updatedAt),
      traceparent,
      tracestate,
    })),
    claimed: byTaker(rows.filter((r): r is Row & { rn: number } => r.rn !== null), takers),
  };
}

/**
 * First attempts of target t's key due before it (`before`: in claim order), for the verdict.
 * Equality on the key and a range of jobs_key_turn_idx, in two parts because the index orders
 * priority descending and the rest ascending: no plan reads other keys' jobs (plan-majors).
 */
const keyTurnsBefore = (q: Queryable, before: ReturnType<Queryable>) => q`
                  SELECT 1 FROM jobs e
                  WHERE e.queue = t.queue AND e.tenant = t.tenant AND e.group_key = t.group_key AND e.group_key IS NOT NULL
                    AND ${jobGuard(q, "claim", "e.status")} AND ${tagged(q, "e")} AND e.attempts = 0 AND ${before}
                    AND e.run_at <= now() AND ${notExpired(q, "e")}`;

/** Why a claim-by-id of a queued job was refused by its queue's settings. */
export type ClaimRefusal = "queue_paused" | "concurrency_limited" | "rate_limited";

/**
 * queued → running for one named job, optionally only at a given version (If-Match), within
 * its queue's limits: the same gate as the claim (gatedClaim.ts) decides, in this statement.
 * `refused` says which limit held it back (row null then).
 */
export async function claimIfQueued(
  id: string,
  f: { tenant: string | null; workerId: string; leaseSeconds: number; version?: number | undefined },
  q: Queryable,
): Promise<{ row: JobRow | null; refused: ClaimRefusal | null }> {
  const filter = q`${scoped(q, f.tenant)}
            ${f.version === undefined ? q`` : q`AND version = ${f.version}`}`;
  const rows = await q<Array<JobRow & { refused: ClaimRefusal | null }>>`
        WITH target AS MATERIALIZED (
          SELECT id, queue, tenant, group_key, attempts, priority, fair_tag FROM jobs
          WHERE id = ${id} AND ${jobGuard(q, "claim")} AND run_at <= now() ${filter} AND ${notInOpenBatch(q, "jobs")} AND ${notExpired(q, "jobs")}
        ), settings AS MATERIALIZED (
          SELECT s.queue, s.tenant, s.group_concurrency FROM queue_settings s JOIN target t USING (queue, tenant) WHERE ${limits(q, "s")}
        ), keys AS (
          SELECT t.queue, t.tenant, t.group_key FROM target t JOIN settings s USING (queue, tenant)
          WHERE t.group_key IS NOT NULL AND s.group_concurrency IS NOT NULL
        ), gate AS MATERIALIZED (
          SELECT * FROM jobline_gate(ARRAY(SELECT queue FROM settings), ARRAY(SELECT tenant FROM settings),
            ARRAY(SELECT queue FROM keys), ARRAY(SELECT tenant FROM keys), ARRAY(SELECT group_key FROM keys))
          WHERE EXISTS (SELECT 1 FROM settings)
        ), verdict AS (
          SELECT CASE
            WHEN g.paused THEN 'queue_paused'
            WHEN g.concurrency IS NOT NULL AND g.running >= g.concurrency THEN 'concurrency_limited'
            -- A retry holds its key's slot already; a first attempt needs one free and no first
            -- attempt of its key due before it.
            WHEN k.group_key IS NOT NULL AND (CASE WHEN t.attempts > 0 THEN k.running ELSE k.slots + (
                SELECT count(*) FROM (
                  ${keyTurnsBefore(q, q`e.priority > t.priority`)}
                  UNION ALL ${keyTurnsBefore(q, q`e.priority = t.priority AND (e.fair_tag, e.id) < (t.fair_tag, t.id)`)}
                  LIMIT g.group_concurrency) x)
              END) >= g.group_concurrency THEN 'concurrency_limited'
            WHEN g.rate_limit IS NOT NULL AND g.rate_used >= g.rate_limit THEN 'rate_limited'
          END AS refused
          FROM target t
          LEFT JOIN gate g ON g.group_key IS NULL
          LEFT JOIN gate k ON k.group_key IS NOT NULL
        ), u AS (
          UPDATE jobs SET ${lease(q, f.leaseSeconds, true)}, worker_id = ${f.workerId}
          WHERE id = (SELECT id FROM target) AND ${jobGuard(q, "claim")} AND run_at <= now() ${filter}
            AND NOT EXISTS (SELECT 1 FROM verdict WHERE refused IS NOT NULL)
          RETURNING *
        ), ${startBatches(q)}, ${rateLogCte(q)}
        SELECT u.*, (SELECT refused FROM verdict) AS refused FROM (SELECT) one LEFT JOIN u ON true`;
  const r = rows[0]!;
  return { row: r.id === null ? null : r, refused: r.refused };
}

/**
 * Held jobs that are due get their fairness tag, as a submit at this moment would give
 * them, and so enter the claim index. Up to `limit` per call, earliest first; SKIP LOCKED
 * lets every process run it at once. Must run inside the caller's transaction (the
 * rows stay locked from the pick to the update). Returns how many, and their queues.
 */
export async function promoteDue(limit: number, q: Queryable): Promise<{ promoted: number; queues: string[] }> {
  const due = await q<Array<{ id: string; tenant: string; queue: string; groupKey: string | null }>>`
        SELECT id, tenant, queue, group_key FROM jobs
        WHERE ${jobGuard(q, "claim")} AND ${heldTag(q, "jobs")}
          AND run_at <= now()
          -- Never a job of an open batch (its cancel skips locked jobs): docs/design-notes.md.
          AND ${notInOpenBatch(q, "jobs")}
        ORDER BY run_at, id LIMIT ${limit}
        FOR UPDATE SKIP LOCKED`;
  if (due.length === 0) return { promoted: 0, queues: [] };
  const tags = await allocateTags(due, q);
  await q`
        UPDATE jobs SET fair_tag = t.tag
        FROM unnest(${due.map((d) => d.id)}::uuid[], ${tags}::bigint[]) AS t(id, tag)
        -- Not a state change: the guard is the claim's ("still claimable"). = ANY(ARRAY[t.id]):
        -- as in completeCtes (docs/performance-notes.md, "Finding a locked row again").
        WHERE jobs.id = ANY(ARRAY[t.id]) AND ${jobGuard(q, "claim", "jobs.status")}`;
  return { promoted: due.length, queues: [...new Set(due.map((d) => d.queue))] };
}
