import { isConflictVictim, isDbUnavailable } from "../../db/errors.js";
import { retryIfLost } from "../../db/tx.js";
import { err, ok } from "../../domain/outcomes.js";
import type { ClaimedRow, ClaimFields, WorkerRow } from "../../repositories/jobs/rows.js";
import { countWin, explainLoss, lost } from "./bookkeeping.js";
import type { AckItem, JobCtx } from "./context.js";
import { sameUuid, type TenantScope } from "./input.js";
import { type ClaimInput, claimKey } from "./longPoll.js";
import { settle } from "./finish.js";

// The claim by id, the poll that also acknowledges (process-next), and the lease's heartbeat.

const REFUSALS = {
  queue_paused: "the queue is paused",
  concurrency_limited: "the queue or the job's group key is at its concurrency limit",
  rate_limited: "the queue's rate limit is spent for now",
} as const;

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
export async function claimNextAndComplete<F extends ClaimFields | undefined = undefined>(c: JobCtx, f: ClaimInput & { fields?: F }, acks: AckItem[]) {
  if (acks.length === 0) return { jobs: await c.claimNext(f), completed: [], failure: undefined };
  let failure: { error: unknown; expected: boolean } | undefined;
  let first: { rows: WorkerRow[]; since: number } | undefined;
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
  if (failure) return { jobs: (first?.rows ?? []) as ClaimedRow<F>[], completed, failure };
  return { jobs: await c.claimNext(f, first), completed, failure };
}
