import type { Queryable } from "../../db/client.js";
import { rerunIfDeadlocked, retryIfLost } from "../../db/tx.js";
import { err, ok } from "../../domain/outcomes.js";
import type { CompleteItem, LeanJobRow } from "../../repositories/jobs.js";
import { countWin, explainLoss, lost } from "./bookkeeping.js";
import type { AckItem, JobCtx } from "./context.js";
import { canonicalJson, resultRefusal, sameUuid, type TenantScope } from "./input.js";
import { matchWinners, REFUSED } from "./sharedStatements.js";
import { continueAfter } from "./workflows.js";

// The finalisation use cases: complete (one, a batch, createWorker's own) and fail.

const refusedProblem = () => err("invalid", "the database refused this result");

export async function complete(c: JobCtx, id: string, scope: TenantScope, leaseToken: string, result: unknown, q?: Queryable) {
  const bad = resultRefusal(result);
  if (bad) return bad;
  const t0 = Date.now();
  const row =
    q === undefined
      ? (await c.shared.completeTogether(scope, [{ id, leaseToken, result }]))[0]!
      : await rerunIfDeadlocked(() => c.jobs.completeIfLeased(id, leaseToken, result, scope, q));
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
export async function settle<R extends LeanJobRow>(
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
