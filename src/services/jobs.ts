import { createHash, randomUUID } from "node:crypto";
import type { Config } from "../config.js";
import type { Queryable, Sql } from "../db/client.js";
import { isConflictVictim, isDbUnavailable, isUniqueViolationOn } from "../db/errors.js";
import { retryIfLost } from "../db/tx.js";
import { uuidv7 } from "../domain/ids.js";
import { isTerminal, type JobStatus } from "../domain/jobs.js";
import { storableProblem } from "../domain/json.js";
import { err, ok } from "../domain/outcomes.js";
import type { Metrics } from "../metrics.js";
import type { CompleteItem, JobRow, JobsRepository } from "../repositories/jobs.js";
import { canonicalJson, MAX_PAYLOAD_BYTES, payloadBytes, sameUuid, type SubmitInput, type TenantScope, toNewJob } from "./jobs/input.js";
import { type ClaimInput, claimKey, createLongPoll, createPromoter } from "./jobs/longPoll.js";
import { createSharedStatements, matchWinners, REFUSED } from "./jobs/sharedStatements.js";
import type { Notifier } from "./notifier.js";

// The job use cases. Statements shared by concurrent calls: jobs/sharedStatements.ts; the
// long poll and the promotion of due jobs: jobs/longPoll.ts; input helpers: jobs/input.ts.
export { canonicalJson, MAX_PAYLOAD_BYTES, payloadBytes, type SubmitInput, type TenantScope, toNewJob } from "./jobs/input.js";
export { PROMOTE_EVERY_MS } from "./jobs/longPoll.js";

const refusedProblem = () => err("invalid", "the database refused this result");
type AckItem = { id: string; leaseToken: string; result?: unknown };

export function createJobService(deps: {
  sql: Sql;
  jobs: JobsRepository;
  notifier: Notifier;
  metrics: Metrics;
  config: Pick<Config, "JOBLINE_BACKOFF_BASE_MS" | "JOBLINE_BACKOFF_MAX_MS">;
  random?: () => number;
}) {
  const { jobs, notifier, metrics } = deps;
  const random = deps.random ?? Math.random;

  const countWin = (from: JobStatus, rows: Array<{ status: JobStatus }>) => {
    // One increment per resulting status, not per row: labels are hashed on every call.
    const by = new Map<JobStatus, number>();
    for (const r of rows) by.set(r.status, (by.get(r.status) ?? 0) + 1);
    for (const [to, n] of by) metrics.transitions.inc({ from, to }, n);
  };
  const lost = (operation: string) => metrics.racesLost.inc({ operation });
  const shared = createSharedStatements(deps.sql, jobs);
  const promoteIfDue = createPromoter(deps.sql, jobs, notifier);
  const claimNext = createLongPoll({ jobs, notifier, metrics, shared, promoteIfDue, countWin });

  async function submit(tenant: string, input: SubmitInput, idempotencyKey?: string) {
    if (payloadBytes(input.payload) > MAX_PAYLOAD_BYTES) return err("payload_too_large", "payload exceeds 256 KiB");
    const requestHash = idempotencyKey
      ? createHash("sha256").update(canonicalJson({ tenant, ...input })).digest("hex")
      : null;
    const bad = storableProblem(input.payload) ?? (input.runAt && Number.isNaN(Date.parse(input.runAt)) ? "runAt is not a date" : null);
    if (bad) return err("invalid", bad);
    if (input.dedupe) return submitDeduped(tenant, input, input.dedupe, idempotencyKey, requestHash);
    if (!idempotencyKey) {
      const row = await shared.submitTogether(input.queue, { ...toNewJob(tenant, input), id: uuidv7(Date.now()) });
      notifier.notify(row.queue);
      return ok(row);
    }
    // Keyed: a second insert after a lost one finds the first (ON CONFLICT DO NOTHING, then the read below).
    const row = await retryIfLost(() => jobs.insert(toNewJob(tenant, input, { idempotencyKey, requestHash })), true);
    if (row) {
      notifier.notify(row.queue);
      return ok(row);
    }
    return idempotentReplay(tenant, idempotencyKey, requestHash);
  }

  /** The job an Idempotency-Key made, for a submit that found the key taken. */
  async function idempotentReplay(tenant: string, idempotencyKey: string, requestHash: string | null) {
    // The conflicting insert waited for the winner to commit, so it is visible now.
    const winner = await jobs.findByIdempotencyKey(tenant, idempotencyKey);
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
    tenant: string,
    input: SubmitInput,
    dedupe: { key: string; replace?: boolean | undefined },
    idempotencyKey: string | undefined,
    requestHash: string | null,
  ) {
    // The key first: a live match would answer before the insert reaches the key's index.
    if (idempotencyKey && (await jobs.findByIdempotencyKey(tenant, idempotencyKey)))
      return idempotentReplay(tenant, idempotencyKey, requestHash);
    const job = { ...toNewJob(tenant, input, { idempotencyKey: idempotencyKey ?? null, requestHash }), dedupeKey: dedupe.key };
    let out: { row: JobRow; inserted: boolean };
    try {
      // Run again after a lost commit: the second finds the first as its match.
      out = await retryIfLost(() => jobs.insertDeduped(job, dedupe.replace === true), true);
    } catch (e) {
      if (idempotencyKey && isUniqueViolationOn(e, "jobs_idempotency_uidx")) return idempotentReplay(tenant, idempotencyKey, requestHash);
      throw e;
    }
    if (out.row.status === "queued") notifier.notify(out.row.queue);
    if (out.inserted) return ok(out.row);
    return { ...ok(out.row, true), deduplicated: true as const };
  }

  async function get(id: string, scope: TenantScope) {
    const row = await retryIfLost(() => jobs.findById(id, scope), true);
    return row ? ok(row) : err("not_found");
  }

  /** After a guarded write changed nothing, one read decides which loss it was. */
  async function explainLoss(id: string, scope: TenantScope, version?: number) {
    const row = await jobs.findById(id, scope);
    if (!row) return { row: null, error: err("not_found") };
    if (version !== undefined && row.version !== version)
      return { row, error: err("version_mismatch", `current version is ${row.version}`) };
    return { row, error: null };
  }

  async function cancel(id: string, scope: TenantScope, version?: number) {
    // A concurrent claim or retry can move the job between the two guarded
    // writes; each pass is atomic, so a few passes always settle.
    for (let pass = 0; pass < 5; pass++) {
      const cancelled = await jobs.cancelIfQueued(id, scope, version);
      if (cancelled) {
        countWin("queued", [cancelled]);
        return ok(cancelled);
      }
      const requested = await jobs.requestCancelIfRunning(id, scope, version);
      if (requested) return ok(requested);
      const { row, error } = await explainLoss(id, scope, version);
      if (error) return error;
      if (isTerminal(row!.status)) {
        lost("cancel");
        return err("terminal", `job is ${row!.status}`);
      }
    }
    return err("terminal", "job kept changing state; retry");
  }

  async function claim(id: string, scope: TenantScope, a: { workerId: string; leaseSeconds: number; version?: number | undefined }) {
    const row = await jobs.claimIfQueued(id, { ...a, tenant: scope });
    if (row) {
      metrics.claims.inc({ outcome: "claimed" });
      countWin("queued", [row]);
      return ok(row);
    }
    const { row: cur, error } = await explainLoss(id, scope, a.version);
    if (error) return error;
    metrics.claims.inc({ outcome: "lost_race" });
    if (cur!.status !== "queued") return err("not_queued", `job is ${cur!.status}`);
    return err("not_claimable", "job is scheduled for later or its batch is still preparing");
  }

  async function heartbeat(id: string, scope: TenantScope, leaseToken: string, leaseSeconds: number) {
    // Extending a lease twice is extending it once.
    const row = await retryIfLost(() => jobs.heartbeatIfLeased(id, leaseToken, leaseSeconds, scope), true);
    if (row) return ok(row);
    const { row: cur, error } = await explainLoss(id, scope);
    lost("heartbeat");
    if (error) return error;
    // Still this holder's, still running: only the deadline guard refused it (by the database's
    // clock). Past the deadline the holder learns it timed out, whether or not the reaper has run.
    const timedOut = cur!.status === "running" && sameUuid(cur!.leaseToken, leaseToken) && cur!.deadlineAt !== null;
    if (timedOut || (cur!.lastError as { code?: string } | null)?.code === "timeout")
      return err("timeout", "the attempt ran past its deadline (timeoutSeconds)");
    return err("lease_lost", "the lease expired or belongs to another worker");
  }

  async function complete(id: string, scope: TenantScope, leaseToken: string, result: unknown, q?: Queryable) {
    const bad = storableProblem(result);
    if (bad) return err("invalid", `result ${bad}`);
    const row =
      q === undefined
        ? (await shared.completeTogether(scope, [{ id, leaseToken, result }]))[0]!
        : await jobs.completeIfLeased(id, leaseToken, result, scope, q);
    if (row === REFUSED) return refusedProblem();
    if (row) {
      countWin("running", [row]);
      return ok(row);
    }
    return explainComplete(id, scope, leaseToken);
  }

  async function explainComplete(id: string, scope: TenantScope, leaseToken: string) {
    const { row: cur, error } = await explainLoss(id, scope);
    if (error) return error;
    // The same call repeated by the lease holder: same job, no second transition.
    if (cur!.status === "succeeded" && sameUuid(cur!.leaseToken, leaseToken)) return ok(cur!, true);
    lost("complete");
    return cur!.status === "running"
      ? err("lease_lost", "the lease expired or belongs to another worker")
      : err("not_running", `job is ${cur!.status}`);
  }

  /**
   * Items answered one by one. An unstorable result is refused on its own: it
   * must not fail a statement shared with others. The ones that lost are
   * explained one by one (a replay, a lost lease, an unknown id).
   */
  async function settle<R extends { status: JobStatus }>(
    scope: TenantScope,
    items: AckItem[],
    complete: (items: CompleteItem[]) => Promise<Array<R | null | typeof REFUSED>>,
    /** Each result's storableProblem; a caller that checked them already passes nulls. */
    problems = items.map((i) => storableProblem(i.result)),
  ) {
    const rows = await complete(items.filter((_, k) => problems[k] === null).map((i) => ({ ...i, result: i.result ?? null })));
    countWin(
      "running",
      rows.filter((r): r is R => r !== null && r !== REFUSED),
    );
    const out = [];
    let g = 0;
    for (const [k, i] of items.entries()) {
      const problem = problems[k];
      if (problem !== null) {
        out.push({ id: i.id, outcome: err("invalid", `result ${problem}`) });
        continue;
      }
      const r = rows[g++];
      if (r === REFUSED) out.push({ id: i.id, outcome: refusedProblem() });
      else out.push(r ? { id: i.id, outcome: ok(r) } : { id: i.id, outcome: await explainComplete(i.id, scope, i.leaseToken) });
    }
    return out;
  }

  /** The batch acknowledgement (HTTP): shares statements with concurrent completes, full rows back. */
  const completeMany = (scope: TenantScope, items: AckItem[]) => settle(scope, items, (good) => shared.completeTogether(scope, good));

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
  async function claimNextAndComplete(f: ClaimInput, acks: AckItem[]) {
    if (acks.length === 0) return { jobs: await claimNext(f), completed: [], failure: undefined };
    let failure: { error: unknown; expected: boolean } | undefined;
    let first: { rows: JobRow[]; since: number } | undefined;
    const completed = await settle(f.scope, acks, async (good) => {
      if (good.length === 0) return [];
      await promoteIfDue();
      const since = notifier.mark();
      const r = await shared.pollTogether(claimKey(f), { acks: good, taker: { workerId: f.workerId, max: f.max, signal: f.signal } });
      first = { rows: r.claimed, since };
      return r.answers;
    }).catch((error: unknown) => {
      const expected = isDbUnavailable(error) || isConflictVictim(error);
      failure = { error, expected };
      const outcome = err(expected ? "unavailable" : "internal", "may not have been acknowledged; send it again");
      return acks.map((a) => ({ id: a.id, outcome }));
    });
    // Failed after the statement (explaining a lost item): the jobs it claimed are this worker's.
    if (failure) return { jobs: first?.rows ?? [], completed, failure };
    return { jobs: await claimNext(f, first), completed, failure };
  }

  /**
   * createWorker's acknowledgement: it batches by itself, so its own statement, with lean rows
   * back. Its results must have passed storableProblem already (createWorker fails a job whose
   * result does not), so they are not serialised once more here.
   */
  const completeOwn = (scope: TenantScope, items: AckItem[]) =>
    settle(
      scope,
      items,
      async (good) => matchWinners([good], await retryIfLost(() => jobs.completeManyIfLeased(good, scope, undefined, true), true))[0]!,
      items.map(() => null),
    );

  async function fail(
    id: string,
    scope: TenantScope,
    a: { leaseToken: string; error: { message: string; code?: string | undefined }; retryable: boolean; retryAfterSeconds?: number | undefined },
  ) {
    // A fail that requeued its job cannot be told from a lost lease on a second run: only when nothing ran.
    const jitter = random();
    const row = await retryIfLost(
      () =>
        jobs.failIfLeased(id, {
          ...a,
          backoffBaseMs: deps.config.JOBLINE_BACKOFF_BASE_MS,
          backoffMaxMs: deps.config.JOBLINE_BACKOFF_MAX_MS,
          jitter,
          tenant: scope,
        }),
      false,
    );
    if (row) {
      countWin("running", [row]);
      // Due by the database's clock (run_at and updated_at come from the same statement's now()),
      // not this process's: with the two apart, a retry that is due would go unannounced.
      if (row.status === "queued" && row.runAt.getTime() <= row.updatedAt.getTime()) notifier.notify(row.queue);
      return ok(row);
    }
    const { row: cur, error } = await explainLoss(id, scope);
    if (error) return error;
    // A replay is the holder's own call again: same token and same error. After the reaper
    // finished the job (it keeps the token), a late fail is a lost race, not a replay.
    const sameCall = sameUuid(cur!.leaseToken, a.leaseToken) && canonicalJson(cur!.lastError) === canonicalJson(a.error);
    if ((cur!.status === "failed" || cur!.status === "cancelled") && sameCall)
      return ok(cur!, true);
    lost("fail");
    return cur!.status === "running"
      ? err("lease_lost", "the lease expired or belongs to another worker")
      : err("not_running", `job is ${cur!.status}`);
  }

  return {
    submit,
    get,
    list: jobs.list,
    cancel,
    claimNext,
    claimNextAndComplete,
    claim,
    heartbeat,
    complete,
    completeMany,
    completeOwn,
    fail,
    newLeaseId: randomUUID,
  };
}

export type JobService = ReturnType<typeof createJobService>;
