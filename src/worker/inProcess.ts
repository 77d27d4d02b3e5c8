import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { jobDto, workerJobDto } from "../services/representation.js";
import { fullRow } from "../repositories/jobs/rows.js";
import type { JobHandler, WorkerOptions } from "./inProcess/types.js";
import { claimLoop, type ClaimLoopOptions } from "./inProcess/claimLoop.js";
import { CompletionBatcher } from "./inProcess/completionBatcher.js";
import { HeartbeatTicker } from "./inProcess/heartbeatTicker.js";
import { runJob } from "./inProcess/runJob.js";
import { Slots } from "./inProcess/slots.js";
import type { WorkerContext } from "./inProcess/workerContext.js";

/**
 * Most jobs one claim or acknowledgement statement carries. A statement's commit and start-up
 * are shared by its rows: with no-op handlers, 2,000-row statements (concurrency 4,000) ran
 * ~15 % more jobs per second than 500-row ones (concurrency 2,000), and PostgreSQL spent
 * ~10 % less CPU per job (`bench/quick.ts inproc`, README).
 */
export const MAX_BATCH = 2000;

// The handler API (types and errors) lives in inProcessTypes.ts; callers import it from here.
export { JobTimeoutError, NonRetryableError } from "./inProcess/types.js";
export type { HandlerSpec, JobContext, JobHandler, WorkerHandlers, WorkerOptions, WorkerStats } from "./inProcess/types.js";

/**
 * In-process handlers over the same service layer as HTTP process-next.
 * The hot path per cycle is one claim statement for up to `concurrency`
 * jobs and one completeOwn statement for every result that is ready.
 */
export function createWorker(o: WorkerOptions) {
  // A typo must not quietly give handlers the full job (a module's export is not type-checked).
  if (o.fields !== undefined && o.fields !== "full" && o.fields !== "worker") throw new RangeError(`fields must be "full" or "worker", not ${JSON.stringify(o.fields)}`);
  const c = o.container;
  const concurrency = o.concurrency ?? 10;
  const batchSize = Math.min(o.batchSize ?? concurrency, concurrency, MAX_BATCH);
  const leaseSeconds = o.leaseSeconds ?? 60;
  const scope = o.tenant ?? null;
  const log = c.logger.child({ component: "worker" });
  const workerId = o.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const stopping = new AbortController();
  const giveUp = new AbortController();
  const w: WorkerContext = {
    jobs: c.services.jobs,
    scope,
    log,
    stats: { claimed: 0, succeeded: 0, failed: 0, lost: 0 },
    slots: new Slots(concurrency),
    ticker: new HeartbeatTicker(c.services.jobs, scope, leaseSeconds, log),
    giveUp: giveUp.signal,
  };
  const claimLoops = Math.max(1, Math.ceil(concurrency / batchSize));
  const completions = new CompletionBatcher(w, batchSize, claimLoops);
  // Either kind of handler takes the job its `fields` asked for (WorkerOptions).
  const handlers = o.handlers as Record<string, JobHandler<unknown>>;
  const toJob = o.fields === "worker" ? workerJobDto : (row: Parameters<typeof fullRow>[0]) => jobDto(fullRow(row));
  const loopOptions: ClaimLoopOptions = {
    queues: o.queues,
    kinds: Object.keys(handlers),
    fields: o.fields,
    workerId,
    leaseSeconds,
    batchSize,
    waitMs: o.waitMs ?? 5000,
    stopping: stopping.signal,
    run: (row) => void runJob(w, handlers[row.kind]!, toJob, completions, row),
  };
  // While one loop's batch runs and completes, another claims: claims overlap completions.
  const loop = Promise.all(Array.from({ length: claimLoops }, () => claimLoop(w, loopOptions)));

  return {
    workerId,
    stats: w.stats,
    /**
     * Stops claiming and waits for running handlers and their completions.
     * After `timeoutMs` their signals abort and stop() returns; whatever is
     * still leased then is left to expire and be recovered by the reaper.
     */
    stop: (timeoutMs = Number.POSITIVE_INFINITY): Promise<void> => stopWorker(w, { stopping, giveUp, loop }, timeoutMs),
  };
}

async function stopWorker(
  w: WorkerContext,
  s: { stopping: AbortController; giveUp: AbortController; loop: Promise<unknown> },
  timeoutMs: number,
): Promise<void> {
  s.stopping.abort();
  w.slots.wakeAll();
  await s.loop;
  if (w.slots.held === 0) return;
  let timer: NodeJS.Timeout | undefined;
  const timeout = Number.isFinite(timeoutMs)
    ? new Promise<void>((r) => {
        timer = setTimeout(() => {
          s.giveUp.abort();
          w.ticker.abandonAll(new Error("worker stopped"));
          r();
        }, timeoutMs);
      })
    : new Promise<void>(() => {});
  await Promise.race([w.slots.drained(), timeout]);
  clearTimeout(timer);
}

export type Worker = ReturnType<typeof createWorker>;
