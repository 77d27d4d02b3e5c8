import { isDataError } from "../../db/errors.js";
import type { RunningJob } from "./runningJob.js";
import { notStorable, recordFailure, settle, type WorkerContext } from "./workerContext.js";

interface Pending {
  r: RunningJob;
  result: unknown;
  /** Split out of a batch PostgreSQL refused: sent in a statement of its own. */
  alone?: boolean;
}

/**
 * Results wait here for the next completeOwn statement; each flusher takes everything that
 * piled up meanwhile. Up to one flusher per claim loop runs at once, so completions keep pace
 * with claims.
 */
export class CompletionBatcher {
  private readonly pending: Pending[] = [];
  private flushing = 0;
  private flushQueued = false;
  private readonly flushNow = () => {
    this.flushQueued = false;
    void this.flush();
  };

  constructor(
    private readonly w: WorkerContext,
    private readonly batchSize: number,
    private readonly maxFlushers: number,
  ) {}

  /** One flush per turn of the event loop takes whatever finished in it. */
  add(r: RunningJob, result: unknown): void {
    this.pending.push({ r, result });
    if (!this.flushQueued && this.flushing < this.maxFlushers) {
      this.flushQueued = true;
      setImmediate(this.flushNow);
    }
  }

  private async flush(): Promise<void> {
    if (this.flushing >= this.maxFlushers) return;
    this.flushing++;
    try {
      const pending = this.pending;
      while (pending.length > 0) {
        // Jobs split out of a refused batch go one per statement.
        const batch = pending[0]?.alone ? pending.splice(0, 1) : pending.splice(0, Math.max(this.batchSize, 50));
        for (const b of await this.record(batch)) settle(this.w, b.r);
      }
    } finally {
      this.flushing--;
    }
  }

  /** Sends one batch until it lands (or is given up on); returns the jobs now settled. */
  private async record(sent: Pending[]): Promise<Pending[]> {
    const w = this.w;
    let batch = sent;
    for (;;) {
      try {
        // This worker batches by itself: its own statements, not the service's shared ones.
        const out = await w.jobs.completeOwn(
          w.scope,
          batch.map((b) => ({ id: b.r.row.id, leaseToken: b.r.row.leaseToken!, result: b.result, queue: b.r.row.queue })),
        );
        for (const r of out) {
          if (r.outcome.ok) w.stats.succeeded++;
          else {
            w.stats.lost++;
            w.log.warn({ job: r.id, error: r.outcome.error }, "completion refused: the lease was lost");
          }
        }
        return batch;
      } catch (e) {
        // A value PostgreSQL refuses (SQLSTATE class 22 data exception, 54 too large) would
        // fail the whole batch on every retry: record each job on its own instead, so only
        // the one with the bad result fails and the others are not run again.
        if (batch.length > 1 && isDataError(e)) {
          this.pending.unshift(...batch.map((b) => ({ ...b, alone: true })));
          return [];
        }
        if (batch.length === 1 && isDataError(e)) {
          await recordFailure(w, batch[0]!.r.row, notStorable(String((e as Error).message)));
          return batch;
        }
        // Given up by stop(timeout): the leases are left to expire, as for running handlers.
        if (w.giveUp.aborted) {
          w.stats.lost += batch.length;
          return batch;
        }
        // Sent again until it lands: each item is fenced by its lease token, so a job the
        // reaper took back meanwhile is refused, never finished twice, and the jobs' heartbeats
        // go on until then. (A deadline read from the claim's lease expiry gave up on jobs whose
        // heartbeats had kept them, and the reaper then ran them again.) A job whose heartbeat
        // found its lease gone is the reaper's already: it is not sent again.
        const gone = batch.filter((b) => b.r.leaseLost);
        w.stats.lost += gone.length;
        for (const b of gone) settle(w, b.r);
        batch = batch.filter((b) => !b.r.leaseLost);
        if (batch.length === 0) return batch;
        w.log.warn({ err: e }, "recording completions failed; retrying");
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  }
}
