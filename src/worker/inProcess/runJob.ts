import type { WorkerRow } from "../../repositories/jobs/rows.js";
import { resultRefusal } from "../../services/jobs.js";
import { runTraced } from "../../tracing.js";
import type { CompletionBatcher } from "./completionBatcher.js";
import { type JobHandler, JobTimeoutError } from "./types.js";
import { context } from "./runningJob.js";
import { notStorable, recordFailure, settle, type WorkerContext } from "./workerContext.js";

/**
 * Runs one claimed job's handler and hands its outcome on. A job keeps its heartbeats until
 * its outcome is recorded, not only while its handler runs: a completion that waits (for a
 * retry after a failed statement, or behind others) must not let the lease run out under a
 * job that succeeded.
 */
export async function runJob(
  w: WorkerContext,
  handler: JobHandler<unknown>,
  toJob: (row: WorkerRow) => unknown,
  completions: CompletionBatcher,
  row: WorkerRow,
): Promise<void> {
  const r = w.ticker.start(row);
  try {
    // Inside a span that is a child of the job's trace context, when it carries one.
    const result = await runTraced(row, () => handler(toJob(row), context(r)));
    if (w.giveUp.aborted) return settle(w, r);
    if (r.leaseLost) {
      w.stats.lost++;
      return settle(w, r);
    }
    const bad = resultRefusal(result);
    if (bad) {
      await recordFailure(w, row, notStorable(bad.detail));
      return settle(w, r);
    }
    completions.add(r, result);
  } catch (e) {
    if (w.giveUp.aborted) return settle(w, r);
    // Stopped at its deadline: recorded as the timeout it is, whatever the handler threw.
    if (r.timedOut) await recordFailure(w, row, new JobTimeoutError(row.id));
    else if (!r.leaseLost) await recordFailure(w, row, e);
    else w.stats.lost++;
    settle(w, r);
  }
}
