import type { ClaimFields, WorkerRow } from "../../repositories/jobs/rows.js";
import type { WorkerContext } from "./workerContext.js";

export interface ClaimLoopOptions {
  queues: string[];
  kinds: string[];
  /** The columns the claim returns (ClaimFields). */
  fields: ClaimFields | undefined;
  workerId: string;
  leaseSeconds: number;
  /** Most jobs per claim statement. */
  batchSize: number;
  /** Long-poll wait of an idle claim. */
  waitMs: number;
  /** Aborted by stop(): the loop ends after its current claim. */
  stopping: AbortSignal;
  /** Starts a claimed job (not awaited: the loop claims again while it runs). */
  run: (row: WorkerRow) => void;
}

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

/** Claims jobs into free slots until stopped: one claim statement for up to batchSize jobs. */
export async function claimLoop(w: WorkerContext, o: ClaimLoopOptions): Promise<void> {
  const { slots } = w;
  while (!o.stopping.aborted) {
    const free = slots.free;
    // Claim as soon as a slot frees: waiting for half of them left slots idle behind long
    // jobs while jobs were queued. Slots freed together are claimed together (Slots.release).
    if (free <= 0) {
      await slots.freed();
      continue;
    }
    const want = Math.min(free, o.batchSize);
    slots.reserve(want);
    let rows: WorkerRow[] = [];
    try {
      rows = await w.jobs.claimNext({
        queues: o.queues,
        kinds: o.kinds,
        fields: o.fields,
        scope: w.scope,
        workerId: o.workerId,
        leaseSeconds: o.leaseSeconds,
        max: want,
        waitMs: o.waitMs,
        signal: o.stopping,
        shared: false,
      });
    } catch (e) {
      w.log.warn({ err: e }, "claim failed; retrying");
      await pause(1000, o.stopping);
    } finally {
      // Unused reservations go back; release() wakes the other loops and a pending stop().
      for (let i = rows.length; i < want; i++) slots.release();
    }
    // Rows a claim returned are ours even if stop() was called meanwhile: run them.
    w.stats.claimed += rows.length;
    for (const r of rows) o.run(r);
  }
}
