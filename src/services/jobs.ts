import { createHash, randomUUID } from "node:crypto";
import type { Config } from "../config.js";
import type { Queryable, Sql } from "../db/client.js";
import { isConflictVictim, isDbUnavailable, isUniqueViolationOn } from "../db/errors.js";
import { inTx, retryIfLost } from "../db/tx.js";
import { uuidv7 } from "../domain/ids.js";
import { isTerminal, type JobStatus } from "../domain/jobs.js";
import { storableProblem } from "../domain/json.js";
import { err, ok } from "../domain/outcomes.js";
import type { Metrics } from "../metrics.js";
import type { CompleteItem, JobRow, JobsRepository, LeanJobRow } from "../repositories/jobs.js";
import { canonicalJson, MAX_PAYLOAD_BYTES, payloadBytes, resultRefusal, sameUuid, type SubmitInput, type TenantScope, toNewJob } from "./jobs/input.js";
import { type ClaimInput, claimKey, createLongPoll, createPromoter } from "./jobs/longPoll.js";
import { createOperatorActions } from "./jobs/operator.js";
import { createSharedStatements, matchWinners, REFUSED, type SharedStatements } from "./jobs/sharedStatements.js";
import type { FinishedWaits } from "./finishedWaits.js";
import type { Notifier } from "./notifier.js";
import type { CappedQueues } from "./queues/capped.js";
import { listDependents } from "../repositories/jobs/dependencies.js";
import { continueAfter, linkChildren, lockAndCheck, type Parents, parentsOf } from "./jobs/workflows.js";
import { endSpan, startSubmitSpan, traceClaimed, traceFinished } from "../tracing.js";
import type { Cancel } from "./tripwire.js";

// The job use cases. Statements shared by concurrent calls: jobs/sharedStatements.ts; the
// long poll and the promotion of due jobs: jobs/longPoll.ts; input helpers: jobs/input.ts.
export { canonicalJson, MAX_PAYLOAD_BYTES, payloadBytes, resultRefusal, type SubmitInput, type TenantScope, toNewJob } from "./jobs/input.js";
export { PROMOTE_EVERY_MS } from "./jobs/longPoll.js";

const refusedProblem = () => err("invalid", "the database refused this result");
/** `queue`, when the caller knows it: a completion frees a slot there (long polls are woken). */
type AckItem = { id: string; leaseToken: string; result?: unknown; queue?: string };

const REFUSALS = {
  queue_paused: "the queue is paused",
  concurrency_limited: "the queue or the job's group key is at its concurrency limit",
  rate_limited: "the queue's rate limit is spent for now",
} as const;

/** What every job use case needs: the repository, the shared statements, the long poll. */
export interface JobCtx {
  sql: Sql;
  jobs: JobsRepository;
  notifier: Notifier;
  capped: CappedQueues;
  finishedWaits: FinishedWaits;
  metrics: Metrics;
  config: Pick<Config, "JOBLINE_BACKOFF_BASE_MS" | "JOBLINE_BACKOFF_MAX_MS">;
  random: () => number;
  shared: SharedStatements;
  promoteIfDue: (always?: boolean) => Promise<Set<string>>;
  claimNext: ReturnType<typeof createLongPoll>;
}

/** One increment per resulting status, not per row: labels are hashed on every call. */
const isFinished = (r: { status: JobStatus }): r is LeanJobRow => "startedAt" in r && "kind" in r;
const isStarted = (r: { status: JobStatus }): r is JobRow => r.status === "running" && "runAt" in r && "startedAt" in r;

/** `since`: when the call began (this process's clock), the start of the claim and finalisation spans. */
function countWin(c: Pick<JobCtx, "metrics" | "finishedWaits">, from: JobStatus, rows: Array<{ id?: string; status: JobStatus }>, since?: number) {
  const { metrics } = c;
  const by = new Map<JobStatus, number>();
  const finished: string[] = [];
  for (const r of rows) {
    by.set(r.status, (by.get(r.status) ?? 0) + 1);
    // Committed finalisations wake GET ?waitMs= waiters (every caller counts after its commit).
    if (r.id !== undefined && isTerminal(r.status)) finished.push(r.id);
  }
  if (finished.length > 0) c.finishedWaits.announce(finished);
  for (const [to, n] of by) metrics.transitions.inc({ from, to }, n);
  // Wait and run-time histograms from the rows the statement returned: no query of their own.
  if (from === "running") {
    metrics.jobsFinished(rows.filter(isFinished));
    traceFinished(rows.filter(isFinished), since);
  } else if (by.get("running")) {
    const started = rows.filter(isStarted);
    metrics.jobsStarted(started);
    traceClaimed(started, since);
  }
}
const lost = (metrics: Metrics, operation: string) => metrics.racesLost.inc({ operation });

/** Wakes one waiting poll that can take `row`, when it is claimable now (run_at and created_at are the database's clock). */
function announce(c: JobCtx, row: JobRow) {
  if (row.runAt.getTime() <= row.createdAt.getTime()) c.notifier.notify(row.queue, { kind: row.kind, tenant: row.tenant });
}

/**
 * A submit inside its span (src/tracing.ts): the job stores the span's trace context, which
 * is the caller's own when no OpenTelemetry SDK records spans.
 */
export async function submit(c: JobCtx, tenant: string, input: SubmitInput, idempotencyKey?: string) {
  const { span, carrier } = startSubmitSpan({ traceparent: input.traceparent ?? null, tracestate: input.tracestate ?? null }, input.queue, input.kind);
  try {
    const out = await submitUntraced(c, tenant, { ...input, traceparent: carrier.traceparent ?? undefined, tracestate: carrier.tracestate ?? undefined }, idempotencyKey);
    endSpan(span, out.ok ? { ok: true, id: out.value.id } : { ok: false, error: out.detail ?? out.error });
    return out;
  } catch (e) {
    endSpan(span, { ok: false, error: e });
    throw e;
  }
}

async function submitUntraced(c: JobCtx, tenant: string, input: SubmitInput, idempotencyKey?: string) {
  if (payloadBytes(input.payload) > MAX_PAYLOAD_BYTES) return err("payload_too_large", "payload exceeds 256 KiB");
  // Trace context is not part of the request: a retry from another span replays the same job.
  const { traceparent: _tp, tracestate: _ts, ...request } = input;
  const requestHash = idempotencyKey
    ? createHash("sha256").update(canonicalJson({ tenant, ...request })).digest("hex")
    : null;
  const bad = storableProblem(input.payload) ?? (input.runAt && Number.isNaN(Date.parse(input.runAt)) ? "runAt is not a date" : null);
  if (bad) return err("invalid", bad);
  const parents = parentsOf(input.dependsOn);
  if (parents && input.dedupe) return err("invalid", "dedupe and dependsOn cannot be combined");
  if (parents) return submitWithParents(c, tenant, input, parents, idempotencyKey, requestHash);
  if (input.dedupe) return submitDeduped(c, tenant, input, input.dedupe, idempotencyKey, requestHash);
  if (!idempotencyKey) {
    const row = await c.shared.submitTogether(input.queue, { ...toNewJob(tenant, input), id: uuidv7(Date.now()) });
    announce(c, row);
    return ok(row);
  }
  // Keyed: a second insert after a lost one finds the first (ON CONFLICT DO NOTHING, then the read below).
  const row = await retryIfLost(() => c.jobs.insert(toNewJob(tenant, input, { idempotencyKey, requestHash })), true);
  if (row) {
    announce(c, row);
    return ok(row);
  }
  return idempotentReplay(c, tenant, idempotencyKey, requestHash);
}

/**
 * A submit with dependsOn, in one transaction: the parents locked and checked, the job inserted
 * waiting, its edges written, and edges to parents already finished resolved at once (so a
 * parent that failed before this submit answers 201 with the job cancelled, dependency_failed).
 */
async function submitWithParents(
  c: JobCtx,
  tenant: string,
  input: SubmitInput,
  parents: Parents,
  idempotencyKey: string | undefined,
  requestHash: string | null,
) {
  const out = await inTx(c.sql, async (tx) => {
    const checked = await lockAndCheck(tenant, [parents], tx);
    if (!checked.locked) return { kind: "refused" as const, error: checked.error! };
    const extra = { idempotencyKey: idempotencyKey ?? null, requestHash, dependsOn: parents };
    const row = await c.jobs.insert(toNewJob(tenant, input, extra), tx);
    if (!row) return { kind: "replay" as const };
    const changed = await linkChildren([{ id: row.id, parents }], checked.locked, tx);
    return { kind: "made" as const, row: changed ? ((await c.jobs.findById(row.id, null, tx)) ?? row) : row };
  });
  if (out.kind === "refused") return out.error;
  if (out.kind === "replay") return idempotentReplay(c, tenant, idempotencyKey!, requestHash);
  return ok(out.row);
}

/** The job an Idempotency-Key made, for a submit that found the key taken. */
async function idempotentReplay(c: JobCtx, tenant: string, idempotencyKey: string, requestHash: string | null) {
  // The conflicting insert waited for the winner to commit, so it is visible now.
  const winner = await c.jobs.findByIdempotencyKey(tenant, idempotencyKey);
  if (!winner) return err("not_found", "the job for this idempotency key was removed; retry");
  if (winner.requestHash !== requestHash)
    return err("idempotency_mismatch", "this Idempotency-Key was used with a different request body");
  return ok(winner, true);
}

/**
 * A submit with `dedupe`: one statement creates the job or returns the live one with that key
 * (replacing payload, priority and runAt when asked and it is still queued). An Idempotency-Key
 * already used returns the job it made (or 422 for another body); a concurrent first use is
 * caught by the key's unique index.
 */
async function submitDeduped(
  c: JobCtx,
  tenant: string,
  input: SubmitInput,
  dedupe: { key: string; replace?: boolean | undefined },
  idempotencyKey: string | undefined,
  requestHash: string | null,
) {
  // The key first: a live match would answer before the insert reaches the key's index.
  if (idempotencyKey && (await c.jobs.findByIdempotencyKey(tenant, idempotencyKey)))
    return idempotentReplay(c, tenant, idempotencyKey, requestHash);
  const job = { ...toNewJob(tenant, input, { idempotencyKey: idempotencyKey ?? null, requestHash }), dedupeKey: dedupe.key };
  let out: { row: JobRow; inserted: boolean };
  try {
    // Run again after a lost commit: the second finds the first as its match.
    out = await retryIfLost(() => c.jobs.insertDeduped(job, dedupe.replace === true), true);
  } catch (e) {
    if (idempotencyKey && isUniqueViolationOn(e, "jobs_idempotency_uidx")) return idempotentReplay(c, tenant, idempotencyKey, requestHash);
    throw e;
  }
  // Claimable now, by the database's clock (a join that changed nothing wakes a poll for nothing: harmless).
  if (out.row.status === "queued" && out.row.runAt.getTime() <= out.row.updatedAt.getTime())
    c.notifier.notify(out.row.queue, { kind: out.row.kind, tenant: out.row.tenant });
  if (out.inserted) return ok(out.row);
  return { ...ok(out.row, true), deduplicated: true as const };
}

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

/** After a guarded write changed nothing, one read decides which loss it was. */
async function explainLoss(c: JobCtx, id: string, scope: TenantScope, version?: number) {
  const row = await c.jobs.findById(id, scope);
  if (!row) return { row: null, error: err("not_found") };
  if (version !== undefined && row.version !== version)
    return { row, error: err("version_mismatch", `current version is ${row.version}`) };
  return { row, error: null };
}

export async function cancel(c: JobCtx, id: string, scope: TenantScope, version?: number) {
  // A concurrent claim or retry can move the job between the two guarded
  // writes; each pass is atomic, so a few passes always settle.
  for (let pass = 0; pass < 5; pass++) {
    const [cancelled] = await c.jobs.cancelIfQueued([id], scope, version);
    if (cancelled) {
      countWin(c, "queued", [cancelled]);
      // A requeued retry held its key's slot until now.
      c.capped.freed([cancelled.queue]);
      await continueAfter(c.sql);
      return ok(cancelled);
    }
    const [requested] = await c.jobs.requestCancelIfRunning([id], scope, version);
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

export async function claim(c: JobCtx, id: string, scope: TenantScope, a: { workerId: string; leaseSeconds: number; version?: number | undefined }) {
  const t0 = Date.now();
  const { row, refused } = await c.jobs.claimIfQueued(id, { ...a, tenant: scope });
  if (refused) {
    c.metrics.claims.inc({ outcome: "refused" });
    return err(refused, REFUSALS[refused]);
  }
  if (row) {
    c.metrics.claims.inc({ outcome: "claimed" });
    countWin(c, "queued", [row], t0);
    return ok(row);
  }
  const { row: cur, error } = await explainLoss(c, id, scope, a.version);
  if (error) return error;
  c.metrics.claims.inc({ outcome: "lost_race" });
  if (cur!.status !== "queued") return err("not_queued", `job is ${cur!.status}`);
  return err("not_claimable", "job is scheduled for later or its batch is still preparing");
}

export async function heartbeat(c: JobCtx, id: string, scope: TenantScope, leaseToken: string, leaseSeconds: number, progress?: object) {
  // Extending a lease twice is extending it once (and storing the same progress twice, once).
  const row = await retryIfLost(() => c.jobs.heartbeatIfLeased(id, leaseToken, leaseSeconds, scope, undefined, progress), true);
  if (row) return ok(row);
  const { row: cur, error } = await explainLoss(c, id, scope);
  lost(c.metrics, "heartbeat");
  if (error) return error;
  // Still this holder's, still running: only the deadline guard refused it (by the database's
  // clock). Past the deadline the holder learns it timed out, whether or not the reaper has run.
  const timedOut = cur!.status === "running" && sameUuid(cur!.leaseToken, leaseToken) && cur!.deadlineAt !== null;
  if (timedOut || (cur!.lastError as { code?: string } | null)?.code === "timeout")
    return err("timeout", "the attempt ran past its deadline (timeoutSeconds)");
  return err("lease_lost", "the lease expired or belongs to another worker");
}

export async function complete(c: JobCtx, id: string, scope: TenantScope, leaseToken: string, result: unknown, q?: Queryable) {
  const bad = resultRefusal(result);
  if (bad) return bad;
  const t0 = Date.now();
  const row =
    q === undefined
      ? (await c.shared.completeTogether(scope, [{ id, leaseToken, result }]))[0]!
      : await c.jobs.completeIfLeased(id, leaseToken, result, scope, q);
  if (row === REFUSED) return refusedProblem();
  if (row) {
    countWin(c, "running", [row], t0);
    c.capped.freed([row.queue]);
    return ok(row);
  }
  return explainComplete(c, id, scope, leaseToken);
}

async function explainComplete(c: JobCtx, id: string, scope: TenantScope, leaseToken: string) {
  const { row: cur, error } = await explainLoss(c, id, scope);
  if (error) return error;
  // The same call repeated by the lease holder: same job, no second transition.
  if (cur!.status === "succeeded" && sameUuid(cur!.leaseToken, leaseToken)) return ok(cur!, true);
  lost(c.metrics, "complete");
  return cur!.status === "running"
    ? err("lease_lost", "the lease expired or belongs to another worker")
    : err("not_running", `job is ${cur!.status}`);
}

/**
 * Items answered one by one. An unstorable result is refused on its own: it
 * must not fail a statement shared with others. The ones that lost are
 * explained one by one (a replay, a lost lease, an unknown id).
 */
async function settle<R extends LeanJobRow>(
  c: JobCtx,
  scope: TenantScope,
  items: AckItem[],
  complete: (items: CompleteItem[]) => Promise<Array<R | null | typeof REFUSED>>,
  /** Each result's refusal; a caller that checked them already passes nulls. */
  problems: Array<ReturnType<typeof resultRefusal>> = items.map((i) => resultRefusal(i.result)),
) {
  const t0 = Date.now();
  const rows = await complete(items.filter((_, k) => problems[k] === null).map((i) => ({ ...i, result: i.result ?? null })));
  const won = rows.filter((r): r is R => r !== null && r !== REFUSED);
  countWin(c, "running", won, t0);
  if (won.length > 0)
    c.capped.freed([...won.flatMap((r) => ("queue" in r ? [r.queue as string] : [])), ...items.flatMap((i) => (i.queue ? [i.queue] : []))]);
  const out = [];
  let g = 0;
  for (const [k, i] of items.entries()) {
    const problem = problems[k];
    if (problem) {
      out.push({ id: i.id, outcome: problem });
      continue;
    }
    const r = rows[g++];
    if (r === REFUSED) out.push({ id: i.id, outcome: refusedProblem() });
    else out.push(r ? { id: i.id, outcome: ok(r) } : { id: i.id, outcome: await explainComplete(c, i.id, scope, i.leaseToken) });
  }
  return out;
}

/** The batch acknowledgement (HTTP): shares statements with concurrent completes, full rows back. */
export const completeMany = (c: JobCtx, scope: TenantScope, items: AckItem[]) => settle(c, scope, items, (good) => c.shared.completeTogether(scope, good));

/**
 * A poll that also acknowledges finished jobs (process-next's `complete`). The
 * acknowledgements and the poll's first claim are one statement (pollTogether), shared with
 * other such polls: a job being completed is running, never claimable, so they touch
 * different rows, and the poll waits for one round trip instead of two. When that claim
 * finds nothing, the poll waits as any other does.
 * A statement that fails did neither: the completions are answered on their own items (503
 * when the database is away or rolled it back, else 500; replaying a complete is safe either
 * way) and the poll ends at once, so the worker learns it while its leases last.
 * `failure` is the error, for the caller to log.
 */
export async function claimNextAndComplete(c: JobCtx, f: ClaimInput, acks: AckItem[]) {
  if (acks.length === 0) return { jobs: await c.claimNext(f), completed: [], failure: undefined };
  let failure: { error: unknown; expected: boolean } | undefined;
  let first: { rows: JobRow[]; since: number } | undefined;
  const completed = await settle(c, f.scope, acks, async (good) => {
    if (good.length === 0) return [];
    await c.promoteIfDue();
    const since = c.notifier.mark();
    const r = await c.shared.pollTogether(claimKey(f), { acks: good, taker: { workerId: f.workerId, max: f.max, signal: f.signal } });
    first = { rows: r.claimed, since };
    return r.answers;
  }).catch((error: unknown) => {
    const expected = isDbUnavailable(error) || isConflictVictim(error);
    failure = { error, expected };
    const outcome = err(expected ? "unavailable" : "internal", "may not have been acknowledged; send it again");
    return acks.map((a) => ({ id: a.id, outcome }));
  });
  // The acknowledged jobs' queues are not known here (lean rows); the poll's own are their likely ones.
  if (completed.some((x) => x.outcome.ok)) c.capped.freed(f.queues);
  // Failed after the statement (explaining a lost item): the jobs it claimed are this worker's.
  if (failure) return { jobs: first?.rows ?? [], completed, failure };
  return { jobs: await c.claimNext(f, first), completed, failure };
}

/**
 * createWorker's acknowledgement: it batches by itself, so its own statement, with lean rows
 * back. Its results must have passed resultRefusal already (createWorker fails a job whose
 * result does not), so they are not serialised once more here.
 */
export const completeOwn = (c: JobCtx, scope: TenantScope, items: AckItem[]) =>
  settle(
    c,
    scope,
    items,
    async (good) => matchWinners([good], await retryIfLost(() => c.jobs.completeManyIfLeased(good, scope, undefined, true), true))[0]!,
    items.map(() => null),
  );

export async function fail(
  c: JobCtx,
  id: string,
  scope: TenantScope,
  a: { leaseToken: string; error: { message: string; code?: string | undefined }; retryable: boolean; retryAfterSeconds?: number | undefined },
) {
  // A fail that requeued its job cannot be told from a lost lease on a second run: only when nothing ran.
  const jitter = c.random();
  const t0 = Date.now();
  const row = await retryIfLost(
    () =>
      c.jobs.failIfLeased(id, {
        ...a,
        backoffBaseMs: c.config.JOBLINE_BACKOFF_BASE_MS,
        backoffMaxMs: c.config.JOBLINE_BACKOFF_MAX_MS,
        jitter,
        tenant: scope,
      }),
    false,
  );
  if (row) {
    countWin(c, "running", [row], t0);
    c.capped.freed([row.queue]);
    // Due by the database's clock (run_at and updated_at come from the same statement's now()),
    // not this process's: with the two apart, a retry that is due would go unannounced.
    if (row.status === "queued" && row.runAt.getTime() <= row.updatedAt.getTime())
      c.notifier.notify(row.queue, { kind: row.kind, tenant: row.tenant });
    else await continueAfter(c.sql);
    return ok(row);
  }
  const { row: cur, error } = await explainLoss(c, id, scope);
  if (error) return error;
  // A replay is the holder's own call again: same token and same error. After the reaper
  // finished the job (it keeps the token), a late fail is a lost race, not a replay.
  const sameCall = sameUuid(cur!.leaseToken, a.leaseToken) && canonicalJson(cur!.lastError) === canonicalJson(a.error);
  if ((cur!.status === "failed" || cur!.status === "cancelled") && sameCall)
    return ok(cur!, true);
  lost(c.metrics, "fail");
  return cur!.status === "running"
    ? err("lease_lost", "the lease expired or belongs to another worker")
    : err("not_running", `job is ${cur!.status}`);
}

/** The job service the container hands out: the use cases above, bound to one context. */
export function createJobService(deps: {
  sql: Sql;
  jobs: JobsRepository;
  notifier: Notifier;
  capped: CappedQueues;
  finishedWaits: FinishedWaits;
  metrics: Metrics;
  config: Pick<Config, "JOBLINE_BACKOFF_BASE_MS" | "JOBLINE_BACKOFF_MAX_MS">;
  random?: () => number;
}) {
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
    /** The jobs depending on job `id` (limit + 1 rows, to tell whether a next page exists). */
    dependents: async (id: string, scope: TenantScope, limit: number, after: string | null) => {
      if (!(await jobs.findById(id, scope))) return err("not_found");
      return ok(await listDependents(id, scope, limit + 1, after, deps.sql));
    },
    newLeaseId: randomUUID,
  };
}

export type JobService = ReturnType<typeof createJobService>;
