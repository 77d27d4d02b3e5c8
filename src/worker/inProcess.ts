import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import type { JobRow } from "../repositories/jobs.js";
import { resultRefusal } from "../services/jobs.js";
import { jobDto } from "../services/representation.js";
import { isDataError } from "../db/errors.js";

/**
 * Most jobs one claim or acknowledgement statement carries. A statement's commit and start-up
 * are shared by its rows: with no-op handlers, 2,000-row statements (concurrency 4,000) ran
 * ~15 % more jobs per second than 500-row ones (concurrency 2,000), and PostgreSQL spent
 * ~10 % less CPU per job (`bench/quick.ts inproc`, README).
 */
export const MAX_BATCH = 2000;

/** The reason a handler's signal aborts at the attempt's deadline (the job's timeoutSeconds). */
export { JobTimeoutError, NonRetryableError } from "./inProcessTypes.js";
export type { JobContext, JobHandler, WorkerOptions, WorkerStats } from "./inProcessTypes.js";
import { JobTimeoutError, NonRetryableError, type WorkerOptions, type WorkerStats } from "./inProcessTypes.js";
import { context, RunningJob } from "./runningJob.js";
import { runTraced } from "../tracing.js";

const errorOf = (e: unknown) => {
  const message = e instanceof Error ? e.message : String(e);
  const code = (e as { code?: unknown } | null)?.code;
  return { message: message || "handler failed", ...(typeof code === "string" ? { code } : {}) };
};

const pause = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener("abort", done);
      resolve();
    }
    signal.addEventListener("abort", done, { once: true });
  });

/**
 * In-process handlers over the same service layer as HTTP process-next.
 * The hot path per cycle is one claim statement for up to `concurrency`
 * jobs and one completeMany statement for every result that is ready.
 */
export function createWorker(o: WorkerOptions) {
  const c = o.container;
  const jobs = c.services.jobs;
  const log = c.logger.child({ component: "worker" });
  const concurrency = o.concurrency ?? 10;
  const batchSize = Math.min(o.batchSize ?? concurrency, concurrency, MAX_BATCH);
  const leaseSeconds = o.leaseSeconds ?? 60;
  const waitMs = o.waitMs ?? 5000;
  const scope = o.tenant ?? null;
  const kinds = Object.keys(o.handlers);
  const workerId = o.workerId ?? `${hostname()}:${process.pid}:${randomUUID().slice(0, 8)}`;
  const stats: WorkerStats = { claimed: 0, succeeded: 0, failed: 0, lost: 0 };

  const stopping = new AbortController();
  const giveUp = new AbortController();
  /** Jobs leased to this worker whose outcome is not recorded yet. */
  let held = 0;
  /** Claim loops waiting for free slots. */
  let slotWaiters: Array<() => void> = [];
  /** stop() calls waiting for the last lease to be settled. */
  const drained: Array<() => void> = [];
  // Slots freed in one turn of the event loop (a completion statement settles many at once)
  // wake the claim loops once, so they claim them in one statement, not one each.
  let wakeQueued = false;
  const wake = () => {
    wakeQueued = false;
    const waiters = slotWaiters;
    slotWaiters = [];
    for (const w of waiters) w();
  };
  const release = () => {
    held--;
    if (!wakeQueued) {
      wakeQueued = true;
      setImmediate(wake);
    }
    if (held === 0) for (const d of drained.splice(0)) d();
  };

  // Results wait here for the next completeMany; each flusher takes everything that piled up
  // meanwhile. Up to one flusher per claim loop runs at once, so completions keep pace with claims.
  const toComplete: Array<{ r: RunningJob; result: unknown; alone?: boolean }> = [];
  let flushing = 0;
  let flushQueued = false;
  const claimLoops = Math.max(1, Math.ceil(concurrency / batchSize));

  async function flush() {
    if (flushing >= claimLoops) return;
    flushing++;
    try {
      while (toComplete.length > 0) {
        // Jobs split out of a refused batch go one per statement.
        let batch = toComplete[0]?.alone ? toComplete.splice(0, 1) : toComplete.splice(0, Math.max(batchSize, 50));
        for (;;) {
          try {
            // This worker batches by itself: its own statements, not the service's shared ones.
            const out = await jobs.completeOwn(
              scope,
              batch.map((b) => ({ id: b.r.row.id, leaseToken: b.r.row.leaseToken!, result: b.result, queue: b.r.row.queue })),
            );
            for (const r of out) {
              if (r.outcome.ok) stats.succeeded++;
              else {
                stats.lost++;
                log.warn({ job: r.id, error: r.outcome.error }, "completion refused: the lease was lost");
              }
            }
            break;
          } catch (e) {
            // A value PostgreSQL refuses (SQLSTATE class 22 data exception, 54 too large) would
            // fail the whole batch on every retry: record each job on its own instead, so only
            // the one with the bad result fails and the others are not run again.
            if (batch.length > 1 && isDataError(e)) {
              toComplete.unshift(...batch.map((b) => ({ ...b, alone: true })));
              batch = [];
              break;
            }
            if (batch.length === 1 && isDataError(e)) {
              await recordFailure(batch[0]!.r.row, new NonRetryableError(`the handler's result cannot be stored: ${String((e as Error).message)}`, "result_not_storable"));
              break;
            }
            // Given up by stop(timeout): the leases are left to expire, as for running handlers.
            if (giveUp.signal.aborted) {
              stats.lost += batch.length;
              break;
            }
            // Sent again until it lands: each item is fenced by its lease token, so a job the
            // reaper took back meanwhile is refused, never finished twice, and the jobs' heartbeats
            // go on until then. (A deadline read from the claim's lease expiry gave up on jobs whose
            // heartbeats had kept them, and the reaper then ran them again.) A job whose heartbeat
            // found its lease gone is the reaper's already: it is not sent again.
            const gone = batch.filter((b) => b.r.leaseLost);
            stats.lost += gone.length;
            for (const b of gone) settle(b.r);
            batch = batch.filter((b) => !b.r.leaseLost);
            if (batch.length === 0) break;
            log.warn({ err: e }, "recording completions failed; retrying");
            await new Promise((r) => setTimeout(r, 500));
          }
        }
        for (const b of batch) settle(b.r);
      }
    } finally {
      flushing--;
    }
  }

  // Heartbeats: one ticker for every running job (a timer per job was a measurable share of a
  // busy worker's time), started while jobs run. A beat is due a third of a lease after the
  // last and goes out within a quarter of that.
  const beatEveryMs = (leaseSeconds * 1000) / 3;
  const tickMs = Math.min(1000, beatEveryMs / 4);
  const running = new Set<RunningJob>();
  let ticker: NodeJS.Timeout | null = null;
  const tick = () => {
    const now = performance.now();
    const wall = Date.now();
    for (const r of running) {
      if (r.deadlineMs <= wall) r.abort(new JobTimeoutError(r.row.id));
      if (r.nextBeatAt > now) continue;
      r.nextBeatAt = now + beatEveryMs;
      r.heartbeat().catch((e: unknown) => log.warn({ err: e, job: r.row.id }, "heartbeat failed"));
    }
  };
  const track = (r: RunningJob) => {
    running.add(r);
    ticker ??= setInterval(tick, tickMs);
  };
  const untrack = (r: RunningJob) => {
    running.delete(r);
    if (running.size === 0 && ticker) {
      clearInterval(ticker);
      ticker = null;
    }
  };
  const beat = (r: RunningJob, progress?: object) => jobs.heartbeat(r.row.id, scope, r.row.leaseToken!, leaseSeconds, progress);

  /** The job's outcome is recorded, or given up on: its heartbeats end and its slot is free. */
  const settle = (r: RunningJob) => {
    untrack(r);
    release();
  };

  // A job keeps its heartbeats until its outcome is recorded, not only while its handler runs:
  // a completion that waits (for a retry after a failed statement, or behind others) must not
  // let the lease run out under a job that succeeded.
  async function run(row: JobRow) {
    const handler = o.handlers[row.kind]!;
    const r = new RunningJob(row, performance.now() + beatEveryMs, beat);
    track(r);
    try {
      // Inside a span that is a child of the job's trace context, when it carries one.
      const result = await runTraced(row, () => handler(jobDto(row), context(r)));
      if (giveUp.signal.aborted) return settle(r);
      if (r.leaseLost) {
        stats.lost++;
        return settle(r);
      }
      const bad = resultRefusal(result);
      if (bad) {
        await recordFailure(row, new NonRetryableError(`the handler's result cannot be stored: ${bad.detail}`, "result_not_storable"));
        return settle(r);
      }
      toComplete.push({ r, result });
      // One flush per turn of the event loop takes whatever finished in it.
      if (!flushQueued && flushing < claimLoops) {
        flushQueued = true;
        setImmediate(() => {
          flushQueued = false;
          void flush();
        });
      }
    } catch (e) {
      if (giveUp.signal.aborted) return settle(r);
      // Stopped at its deadline: recorded as the timeout it is, whatever the handler threw.
      if (r.timedOut) await recordFailure(row, new JobTimeoutError(row.id));
      else if (!r.leaseLost) await recordFailure(row, e);
      else stats.lost++;
      settle(r);
    }
  }

  async function recordFailure(row: JobRow, e: unknown) {
    try {
      const r = await jobs.fail(row.id, scope, {
        leaseToken: row.leaseToken!,
        error: errorOf(e),
        retryable: !(e instanceof NonRetryableError || (e as { retryable?: unknown } | null)?.retryable === false),
      });
      if (r.ok) stats.failed++;
      else stats.lost++;
    } catch (err) {
      // The lease runs out and the reaper retries the job.
      stats.lost++;
      log.error({ err, job: row.id }, "could not record a failure");
    }
  }

  async function claimLoop() {
    while (!stopping.signal.aborted) {
      const free = concurrency - held;
      // Claim as soon as a slot frees: waiting for half of them left slots idle behind long
      // jobs while jobs were queued. Slots freed together are claimed together (release()).
      if (free <= 0) {
        await new Promise<void>((r) => {
          slotWaiters.push(r);
        });
        continue;
      }
      // Slots are reserved before the claim, so parallel claim loops never lease more than `concurrency`.
      const want = Math.min(free, batchSize);
      held += want;
      let rows: JobRow[] = [];
      try {
        rows = await jobs.claimNext({
          queues: o.queues,
          kinds,
          scope,
          workerId,
          leaseSeconds,
          max: want,
          waitMs,
          signal: stopping.signal,
          shared: false,
        });
      } catch (e) {
        log.warn({ err: e }, "claim failed; retrying");
        await pause(1000, stopping.signal);
      } finally {
        // Unused reservations go back; release() wakes the other loops and a pending stop().
        for (let i = rows.length; i < want; i++) release();
      }
      // Rows a claim returned are ours even if stop() was called meanwhile: run them.
      stats.claimed += rows.length;
      for (const r of rows) void run(r);
    }
  }

  // While one loop's batch runs and completes, another claims: claims overlap completions.
  const loops = Array.from({ length: claimLoops }, () => claimLoop());
  const loop = Promise.all(loops);

  return {
    workerId,
    stats,
    /**
     * Stops claiming and waits for running handlers and their completions.
     * After `timeoutMs` their signals abort and stop() returns; whatever is
     * still leased then is left to expire and be recovered by the reaper.
     */
    async stop(timeoutMs = Number.POSITIVE_INFINITY): Promise<void> {
      stopping.abort();
      for (const w of slotWaiters.splice(0)) w();
      await loop;
      if (held === 0) return;
      const done = new Promise<void>((r) => {
        drained.push(r);
      });
      let timer: NodeJS.Timeout | undefined;
      const timeout = Number.isFinite(timeoutMs)
        ? new Promise<void>((r) => {
            timer = setTimeout(() => {
              giveUp.abort();
              // No more heartbeats: the leases run out and the reaper takes the jobs back.
              for (const r of [...running]) {
                untrack(r);
                r.abort(new Error("worker stopped"));
              }
              r();
            }, timeoutMs);
          })
        : new Promise<void>(() => {});
      await Promise.race([done, timeout]);
      clearTimeout(timer);
    },
  };
}

export type Worker = ReturnType<typeof createWorker>;
