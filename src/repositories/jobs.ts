import type { Queryable } from "../db/client.js";
import * as batchJobs from "./jobs/batchJobs.js";
import * as claim from "./jobs/claim.js";
import * as gate from "./jobs/gatedClaim.js";
import * as insert from "./jobs/insert.js";
import * as op from "./jobs/operator.js";
import * as read from "./jobs/read.js";
import type { ClaimFields, ClaimFilter, CompleteItem, NewJob, SharedClaimFilter, Taker } from "./jobs/rows.js";
import * as t from "./jobs/transitions.js";

// The statements live in jobs/ by duty: claim.ts (claims, promotion), gatedClaim.ts (the claim
// of queues with settings), transitions.ts (every later guarded write), operator.ts (operator
// writes: retry, delete), batchJobs.ts (writes of a batch's jobs), dependencies.ts (workflow
// edges), finalise.ts (the shared finalisation), fairness.ts (tags), insert.ts, read.ts,
// rows.ts (row types). This object hands them out bound to the process's pool; each still
// takes a transaction as `q`.
export type { ClaimRefusal } from "./jobs/claim.js";
export type { ClaimFilter, CompleteItem, JobRow, LeanJobRow, NewJob } from "./jobs/rows.js";
export { CLOCK_KEY, fairKey, HOLD_AHEAD_MS } from "./jobs/fairness.js";

export function jobsRepository(sql: Queryable) {
  return {
    insert: (j: NewJob, q: Queryable = sql) => insert.insert(j, q),
    insertDeduped: (j: NewJob & { dedupeKey: string }, replace: boolean, q: Queryable = sql) => insert.insertDeduped(j, replace, q),
    /** Must run inside the caller's transaction. */
    insertMany: (jobs: NewJob[], q: Queryable) => insert.insertMany(jobs, q),
    countByQueue: (tenant: string | null, q: Queryable = sql) => read.countByQueue(tenant, q),
    oldestClaimableByQueue: (tenant: string | null, q: Queryable = sql) => read.oldestClaimableByQueue(tenant, q),
    findById: (id: string, tenant: string | null, q: Queryable = sql) => read.findById(id, tenant, q),
    findByIdempotencyKey: (tenant: string, key: string, q: Queryable = sql) => read.findByIdempotencyKey(tenant, key, q),
    list: (f: read.JobListFilter, q: Queryable = sql) => read.list(f, q),

    /** gated: the text for queues with settings (jobs/gatedClaim.ts); the free one takes nothing from those. */
    claimNext: <F extends ClaimFields | undefined = undefined>(f: ClaimFilter & { fields?: F }, gated = false, q: Queryable = sql) =>
      claim.claimNext<F>(f, q, gated),
    claimNextFor: <F extends ClaimFields | undefined = undefined>(
      f: SharedClaimFilter & { fields?: F },
      takers: Taker[],
      gated = false,
      q: Queryable = sql,
    ) => claim.claimNextFor<F>(f, takers, q, gated),
    completeAndClaimFor: <F extends ClaimFields | undefined = undefined>(
      items: CompleteItem[],
      f: SharedClaimFilter & { fields?: F },
      takers: Taker[],
      gated = false,
      q: Queryable = sql,
    ) => claim.completeAndClaimFor<F>(items, f, takers, q, gated),
    hasSettings: (f: SharedClaimFilter, q: Queryable = sql) => gate.hasSettings(f, q),
    claimIfQueued: (id: string, f: Parameters<typeof claim.claimIfQueued>[1], q: Queryable = sql) => claim.claimIfQueued(id, f, q),
    /** Must run inside the caller's transaction. */
    promoteDue: (limit: number, q: Queryable) => claim.promoteDue(limit, q),

    cancelIfQueued: (ids: string[], tenant: string | null, version: number | undefined, q: Queryable = sql) =>
      t.cancelIfQueued(ids, tenant, version, q),
    requestCancelIfRunning: (ids: string[], tenant: string | null, version: number | undefined, q: Queryable = sql) =>
      t.requestCancelIfRunning(ids, tenant, version, q),
    retryIfFailedOrCancelled: (ids: string[], tenant: string | null, q: Queryable = sql) => op.retryIfFailedOrCancelled(ids, tenant, q),
    deleteIfFinished: (ids: string[], tenant: string | null, q: Queryable = sql) => op.deleteIfFinished(ids, tenant, q),
    selectForBulk: (f: read.BulkFilter, q: Queryable = sql) => read.selectForBulk(f, q),
    heartbeatIfLeased: (id: string, leaseToken: string, leaseSeconds: number, tenant: string | null, q: Queryable = sql, progress?: object) =>
      t.heartbeatIfLeased(id, leaseToken, leaseSeconds, tenant, q, progress),
    completeIfLeased: (id: string, leaseToken: string, result: unknown, tenant: string | null, q: Queryable = sql) =>
      t.completeIfLeased(id, leaseToken, result, tenant, q),
    completeManyIfLeased: <Lean extends boolean = false>(items: CompleteItem[], tenant: string | null, q: Queryable = sql, lean?: Lean) =>
      t.completeManyIfLeased(items, tenant, q, lean),
    failIfLeased: (id: string, a: t.FailArgs, q: Queryable = sql) => t.failIfLeased(id, a, q),
    reapExpired: (limit: number, q: Queryable = sql) => t.reapExpired(limit, q),
    expireDue: (limit: number, q: Queryable = sql) => t.expireDue(limit, q),
    releaseIfLeased: (items: Array<{ id: string; leaseToken: string }>, q: Queryable = sql) => t.releaseIfLeased(items, q),

    releaseQueuedOfSealed: (batchId: string, q: Queryable) => batchJobs.releaseQueuedOfSealed(batchId, q),
    releaseStragglers: (limit: number, q: Queryable = sql) => batchJobs.releaseStragglers(limit, q),
    lockUnfinishedOfBatch: (batchId: string, lockTimeoutMs: number, q: Queryable) => batchJobs.lockUnfinishedOfBatch(batchId, lockTimeoutMs, q),
    cancelQueuedOfBatch: (batchId: string, opts: Parameters<typeof batchJobs.cancelQueuedOfBatch>[1], q: Queryable) =>
      batchJobs.cancelQueuedOfBatch(batchId, opts, q),
    requestCancelRunningOfBatch: (batchId: string, q: Queryable) => batchJobs.requestCancelRunningOfBatch(batchId, q),
  };
}

export type JobsRepository = ReturnType<typeof jobsRepository>;

