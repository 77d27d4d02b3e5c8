import type { Logger } from "pino";
import type { WorkerRow } from "../../repositories/jobs/rows.js";
import type { JobService } from "../../services/jobs.js";
import type { HeartbeatTicker } from "./heartbeatTicker.js";
import { NonRetryableError, type WorkerStats } from "./types.js";
import type { RunningJob } from "./runningJob.js";
import type { Slots } from "./slots.js";

/** What the in-process worker's parts share: made once per worker by createWorker. */
export interface WorkerContext {
  readonly jobs: JobService;
  readonly scope: string | null;
  readonly log: Logger;
  readonly stats: WorkerStats;
  readonly slots: Slots;
  readonly ticker: HeartbeatTicker;
  /** Aborted when stop(timeout) gives up waiting: leases still held are left to expire. */
  readonly giveUp: AbortSignal;
}

/** The job's outcome is recorded, or given up on: its heartbeats end and its slot is free. */
export function settle(w: WorkerContext, r: RunningJob): void {
  w.ticker.untrack(r);
  w.slots.release();
}

const errorOf = (e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  return { message: message || "handler failed", ...(typeof code === "string" ? { code } : {}) };
};

export const notStorable = (detail: string | undefined) =>
  new NonRetryableError(`the handler's result cannot be stored: ${detail}`, "result_not_storable");

/** Records a failed attempt (retried unless the error says not to); counted as lost if refused. */
export async function recordFailure(w: WorkerContext, row: WorkerRow, e: unknown): Promise<void> {
  try {
    const r = await w.jobs.fail(row.id, w.scope, {
      leaseToken: row.leaseToken!,
      error: errorOf(e),
      retryable: !(e instanceof NonRetryableError || (e as { retryable?: unknown } | null)?.retryable === false),
    });
    if (r.ok) w.stats.failed++;
    else w.stats.lost++;
  } catch (err) {
    // The lease runs out and the reaper retries the job.
    w.stats.lost++;
    w.log.error({ err, job: row.id }, "could not record a failure");
  }
}
