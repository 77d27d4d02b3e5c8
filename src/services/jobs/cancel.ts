import { rerunIfDeadlocked } from "../../db/tx.js";
import { isTerminal } from "../../domain/jobs.js";
import { err, ok } from "../../domain/outcomes.js";
import { countWin, explainLoss, lost } from "./bookkeeping.js";
import type { JobCtx } from "./context.js";
import type { TenantScope } from "./input.js";
import { continueAfter } from "./workflows.js";

/** Cancel one job: a queued job is cancelled, a running one is asked to stop (cancel_requested). */
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
