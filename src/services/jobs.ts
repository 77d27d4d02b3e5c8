import { randomUUID } from "node:crypto";
import type { Queryable } from "../db/client.js";
import { rerunIfDeadlocked, retryIfLost } from "../db/tx.js";
import { isTerminal } from "../domain/jobs.js";
import { err, ok } from "../domain/outcomes.js";
import type { JobRow } from "../repositories/jobs.js";
import { listDependents } from "../repositories/jobs/dependencies.js";
import { countWin, explainLoss, lost } from "./jobs/bookkeeping.js";
import { claim, claimNextAndComplete, heartbeat } from "./jobs/claim.js";
import type { AckItem, JobCtx } from "./jobs/context.js";
import { complete, completeMany, completeOwn, fail } from "./jobs/finish.js";
import type { SubmitInput, TenantScope } from "./jobs/input.js";
import { type ClaimInput, createLongPoll, createPromoter } from "./jobs/longPoll.js";
import { createOperatorActions } from "./jobs/operator.js";
import { createSharedStatements } from "./jobs/sharedStatements.js";
import { submit } from "./jobs/submit.js";
import { continueAfter } from "./jobs/workflows.js";
import type { Cancel } from "./tripwire.js";

// The job use cases and the service that binds them. Submit: jobs/submit.ts; claim and
// heartbeat: jobs/claim.ts; complete and fail: jobs/finish.ts; retry, delete, bulk:
// jobs/operator.ts; what follows a won or lost write (metrics, spans, waits): jobs/bookkeeping.ts;
// statements shared by concurrent calls: jobs/sharedStatements.ts; the long poll and the
// promotion of due jobs: jobs/longPoll.ts; input helpers: jobs/input.ts.
export { canonicalJson, MAX_PAYLOAD_BYTES, payloadBytes, resultRefusal, type SubmitInput, type TenantScope, toNewJob } from "./jobs/input.js";
export { PROMOTE_EVERY_MS } from "./jobs/longPoll.js";
export type { JobCtx } from "./jobs/context.js";
export { claim, claimNextAndComplete, heartbeat } from "./jobs/claim.js";
export { complete, completeMany, completeOwn, fail } from "./jobs/finish.js";
export { submit } from "./jobs/submit.js";

export async function get(c: JobCtx, id: string, scope: TenantScope) {
  const row = await retryIfLost(() => c.jobs.findById(id, scope), true);
  return row ? ok(row) : err("not_found");
}

/**
 * GET ?waitMs=: the job once it is finished, or as it is when the wait ends. The wait is
 * registered before the first read, so a finalisation committed after that read wakes it
 * (finishedWaits); no query runs while it waits.
 */
export async function getWhenFinished(c: JobCtx, id: string, scope: TenantScope, waitMs: number, signal?: Cancel) {
  const w = c.finishedWaits.wait(id, waitMs, signal);
  try {
    const first = await get(c, id, scope);
    if (!first.ok || isTerminal(first.value.status)) return first;
    await w.done;
  } finally {
    w.cancel();
  }
  // Every request woken by one finalisation reads the job at once: they share one read.
  const row = await sharedRead(c, id.toLowerCase());
  return row && (scope === null || row.tenant === scope) ? ok(row) : err("not_found");
}

const rereads = new WeakMap<JobCtx, Map<string, Promise<JobRow | null>>>();
function sharedRead(c: JobCtx, id: string): Promise<JobRow | null> {
  let reads = rereads.get(c);
  if (!reads) {
    reads = new Map();
    rereads.set(c, reads);
  }
  const shared = reads;
  let p = shared.get(id);
  if (!p) {
    p = retryIfLost(() => c.jobs.findById(id, null), true).finally(() => shared.delete(id));
    shared.set(id, p);
  }
  return p;
}

export async function cancel(c: JobCtx, id: string, scope: TenantScope, version?: number) {
  // A concurrent claim or retry can move the job between the two guarded
  // writes; each pass is atomic, so a few passes always settle.
  for (let pass = 0; pass < 5; pass++) {
    const [cancelled] = await rerunIfDeadlocked(() => c.jobs.cancelIfQueued([id], scope, version));
    if (cancelled) {
      countWin(c, "queued", [cancelled]);
      // A requeued retry held its key's slot until now.
      c.capped.freed([cancelled.queue]);
      await continueAfter(c.sql);
      return ok(cancelled);
    }
    const [requested] = await rerunIfDeadlocked(() => c.jobs.requestCancelIfRunning([id], scope, version));
    if (requested) return ok(requested);
    const { row, error } = await explainLoss(c, id, scope, version);
    if (error) return error;
    if (isTerminal(row!.status)) {
      lost(c.metrics, "cancel");
      return err("terminal", `job is ${row!.status}`);
    }
  }
  return err("terminal", "job kept changing state; retry");
}

/** The jobs depending on job `id` (limit + 1 rows, to tell whether a next page exists). */
async function dependents(c: JobCtx, id: string, scope: TenantScope, limit: number, after: string | null) {
  if (!(await c.jobs.findById(id, scope))) return err("not_found");
  return ok(await listDependents(id, scope, limit + 1, after, c.sql));
}

/** The job service the container hands out: the use cases above, bound to one context. */
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
    claimNextAndComplete: (f: ClaimInput, acks: AckItem[]) => claimNextAndComplete(c, f, acks),
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
