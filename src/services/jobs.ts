import { randomUUID } from "node:crypto";
import type { Queryable } from "../db/client.js";
import { countWin } from "./jobs/bookkeeping.js";
import { cancel } from "./jobs/cancel.js";
import { claim, claimNextAndComplete, heartbeat } from "./jobs/claim.js";
import type { AckItem, JobCtx } from "./jobs/context.js";
import { complete, completeMany, completeOwn, fail } from "./jobs/finish.js";
import type { SubmitInput, TenantScope } from "./jobs/input.js";
import { type ClaimInput, createLongPoll, createPromoter } from "./jobs/longPoll.js";
import { createOperatorActions } from "./jobs/operator.js";
import { dependents, get, getWhenFinished } from "./jobs/read.js";
import { createSharedStatements } from "./jobs/sharedStatements.js";
import { submit } from "./jobs/submit.js";
import type { Cancel } from "./tripwire.js";
import type { ClaimFields } from "../repositories/jobs/rows.js";

// The job service: binds the use cases in jobs/ to one context (JobCtx, jobs/context.ts).
// Submit: jobs/submit.ts (dependsOn checks: jobs/workflows.ts); get, get when finished,
// dependents: jobs/read.ts; cancel: jobs/cancel.ts; claim and heartbeat: jobs/claim.ts;
// complete and fail: jobs/finish.ts; retry, delete, bulk: jobs/operator.ts; list: the
// repository's. Shared by them: what follows a won or lost write (jobs/bookkeeping.ts),
// statements shared by concurrent calls (jobs/sharedStatements.ts), the long poll and the
// promotion of due jobs (jobs/longPoll.ts), input helpers (jobs/input.ts).
export { canonicalJson, MAX_PAYLOAD_BYTES, payloadBytes, resultRefusal, type SubmitInput, type TenantScope, toNewJob } from "./jobs/input.js";
export { PROMOTE_EVERY_MS } from "./jobs/longPoll.js";
export type { JobCtx } from "./jobs/context.js";
export { cancel } from "./jobs/cancel.js";
export { claim, claimNextAndComplete, heartbeat } from "./jobs/claim.js";
export { complete, completeMany, completeOwn, fail } from "./jobs/finish.js";
export { get, getWhenFinished } from "./jobs/read.js";
export { submit } from "./jobs/submit.js";

/** The job service the container hands out: the use cases in jobs/, bound to one context. */
export function createJobService(
  deps: Pick<JobCtx, "sql" | "jobs" | "notifier" | "capped" | "finishedWaits" | "metrics" | "config"> & { random?: () => number },
) {
  const { jobs, notifier, metrics, capped } = deps;
  const shared = createSharedStatements(deps.sql, jobs, capped, metrics);
  const promoteIfDue = createPromoter(deps.sql, jobs, notifier, metrics);
  const claimNext = createLongPoll({ notifier, metrics, shared, promoteIfDue, countWin: (from, rows) => countWin(c, from, rows) });
  const c: JobCtx = {
    sql: deps.sql,
    jobs,
    notifier,
    capped,
    finishedWaits: deps.finishedWaits,
    metrics,
    config: deps.config,
    random: deps.random ?? Math.random,
    shared,
    promoteIfDue,
    claimNext,
  };
  const operator = createOperatorActions({ jobs, notifier, metrics, countWin: (from, rows) => countWin(c, from, rows) });
  return {
    submit: (tenant: string, input: SubmitInput, idempotencyKey?: string) => submit(c, tenant, input, idempotencyKey),
    get: (id: string, scope: TenantScope) => get(c, id, scope),
    getWhenFinished: (id: string, scope: TenantScope, waitMs: number, signal?: Cancel) => getWhenFinished(c, id, scope, waitMs, signal),
    list: jobs.list,
    cancel: (id: string, scope: TenantScope, version?: number) => cancel(c, id, scope, version),
    claimNext,
    claimNextAndComplete: <F extends ClaimFields | undefined = undefined>(f: ClaimInput & { fields?: F }, acks: AckItem[]) =>
      claimNextAndComplete<F>(c, f, acks),
    claim: (id: string, scope: TenantScope, a: Parameters<typeof claim>[3]) => claim(c, id, scope, a),
    heartbeat: (id: string, scope: TenantScope, leaseToken: string, leaseSeconds: number, progress?: object) =>
      heartbeat(c, id, scope, leaseToken, leaseSeconds, progress),
    complete: (id: string, scope: TenantScope, leaseToken: string, result: unknown, q?: Queryable) => complete(c, id, scope, leaseToken, result, q),
    completeMany: (scope: TenantScope, items: AckItem[]) => completeMany(c, scope, items),
    completeOwn: (scope: TenantScope, items: AckItem[]) => completeOwn(c, scope, items),
    fail: (id: string, scope: TenantScope, a: Parameters<typeof fail>[3]) => fail(c, id, scope, a),
    retry: operator.retry,
    remove: operator.remove,
    bulk: operator.bulk,
    dependents: (id: string, scope: TenantScope, limit: number, after: string | null) => dependents(c, id, scope, limit, after),
    newLeaseId: randomUUID,
  };
}

export type JobService = ReturnType<typeof createJobService>;
