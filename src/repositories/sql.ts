import type postgres from "postgres";
import { batchFrom } from "../domain/batches.js";
import { fromStatuses, type JobTransition } from "../domain/jobs.js";
import type { Queryable } from "../db/client.js";
import { HELD_TAG, PREPARING_TAG } from "../db/schema.js";

/**
 * `status IN ('a','b')` built from the transition table. The literals come
 * from a constant table in src/domain, never from input, so inlining is safe
 * and keeps the statement prepared with a stable text.
 */
export function statusIn(q: Queryable, column: string, statuses: readonly string[]): postgres.PendingQuery<postgres.Row[]> {
  return q.unsafe(`${column} IN (${quoted(statuses)})`);
}

/** `'a','b'`: statusIn's list, for SQL kept as a plain string (finaliseTail). */
export const quoted = (statuses: readonly string[]) => statuses.map((s) => `'${s}'`).join(",");

/** `AND column = $tenant`, or nothing for a platform caller (tenant null: every tenant). */
export const scoped = (q: Queryable, tenant: string | null, column = "tenant") =>
  tenant === null ? q`` : q`AND ${q.unsafe(column)} = ${tenant}`;

export const jobGuard = (q: Queryable, t: JobTransition, column = "status") => statusIn(q, column, fromStatuses(t));
export const batchGuard = (q: Queryable, t: Parameters<typeof batchFrom>[0], column = "status") =>
  statusIn(q, column, batchFrom(t));

/** `column = 'x'` for a batch transition with exactly one from-status, in statements written that way. */
export function batchIs(q: Queryable, t: Parameters<typeof batchFrom>[0], column: string) {
  const from = batchFrom(t);
  if (from.length !== 1) throw new Error(`batch transition ${t} has ${from.length} from-statuses`);
  return q.unsafe(`${column} = '${from[0]}'`);
}

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

/** How many failed attempts a job's error history keeps. */
export const ERROR_HISTORY = 20;

/**
 * `errors` with one failed attempt appended, the oldest dropped past ERROR_HISTORY: for the SET
 * of the statement that records the failure. `attempt` and the error come from the locked row.
 */
export function appendError(q: Queryable, code: postgres.PendingQuery<postgres.Row[]>, message: postgres.PendingQuery<postgres.Row[]>) {
  return q`jsonb_path_query_array(
      jobs.errors || jsonb_build_array(jsonb_build_object('attempt', jobs.attempts, 'at', now(), 'code', ${code}, 'message', ${message})),
      ${q.unsafe(`'$[last-${ERROR_HISTORY - 1} to last]'`)})`;
}

/** Small limits go into the text, so each has a reusable generic plan (docs/performance-notes.md). */
export const limitOf = (q: Queryable, n: number) => (Number.isInteger(n) && n >= 1 && n <= 32 ? q.unsafe(String(n)) : q`${n}`);

/** Not a job of a batch still being built (the batch's addJobs status). */
export const notInOpenBatch = (q: Queryable, job: string) => q`(${q.unsafe(`${job}.batch_id`)} IS NULL OR NOT EXISTS (
            SELECT 1 FROM batches b WHERE b.id = ${q.unsafe(`${job}.batch_id`)} AND ${batchIs(q, "addJobs", "b.status")}))`;

/**
 * A job holding a queue-control slot: running, or requeued after an attempt (it keeps its key's
 * turn). Written as jobs_slot_idx's predicate so every plan can use that index.
 */
export const holdsSlot = (q: Queryable, alias: string) =>
  q.unsafe(`(${alias}.attempts > 0 AND (${alias}.status = 'running' OR ${alias}.status = 'queued'))`);

/**
 * A settings row that limits claims. A row with only defaultTimeoutSeconds (or resumed, with no
 * limit left) does not: its queue keeps the free claim and never waits for the gate.
 */
export const limits = (q: Queryable, s: string) =>
  q.unsafe(`(${s}.paused OR ${s}.concurrency IS NOT NULL OR ${s}.group_concurrency IS NOT NULL OR ${s}.rate_limit IS NOT NULL)`);

/**
 * The attempt's timeout: the job's own, else its queue's defaultTimeoutSeconds (a primary-key probe).
 * `anyDefault`, an uncorrelated test run once per statement (an InitPlan), skips that probe for every
 * row when no queue of the claim has a default: most claims, and the in-process row's 2,000 rows a claim.
 */
export const timeoutOf = (q: Queryable, job: string, anyDefault?: postgres.PendingQuery<postgres.Row[]>) => {
  const own = q.unsafe(`${job}.timeout_seconds`);
  const probe = q.unsafe(`(SELECT ds.default_timeout_seconds FROM queue_settings ds
                 WHERE ds.queue = ${job}.queue AND ds.tenant = ${job}.tenant)`);
  return anyDefault === undefined ? q`coalesce(${own}, ${probe})` : q`coalesce(${own}, CASE WHEN (${anyDefault}) THEN ${probe} END)`;
};

/** Not past its expiresAt: such a job never starts, even before the reaper ends it. */
export const notExpired = (q: Queryable, job: string) => q.unsafe(`(${job}.expires_at IS NULL OR ${job}.expires_at > now())`);
