import type { WorkerRow } from "../../repositories/jobs/rows.js";
import type { JobService } from "../../services/jobs.js";
import { type JobContext, JobTimeoutError } from "./types.js";
import { progressProblem, type ProgressReport } from "../../domain/progress.js";

/**
 * A progress report goes out with the next heartbeat, brought forward to at most this long
 * after the report (and never sooner than this after the previous beat): a handler that
 * reports on every item costs one heartbeat a second, not one statement per report.
 */
export const PROGRESS_FLUSH_MS = 1000;

/**
 * What the worker keeps for a running job. One object per job, with no closures or timer of
 * its own: a busy worker runs thousands of jobs a second, and per-job closures and timers
 * were a measurable share of its time. Handlers never see it (see `context`).
 */
export class RunningJob {
  leaseLost = false;
  /** Date.now() time of the attempt's deadline, if it has one. */
  readonly deadlineMs: number;
  private ac: AbortController | null = null;
  private abortedBy: Error | null = null;
  /** The latest report not yet sent; a newer one replaces it (only the latest is stored anyway). */
  private pendingProgress: ProgressReport | undefined;
  /** performance.now() time of the last heartbeat sent. */
  private lastBeatAt = performance.now();

  constructor(
    readonly row: WorkerRow,
    /** performance.now() time of the next automatic heartbeat: a wall-clock step must not delay it. */
    public nextBeatAt: number,
    private readonly beat: (r: RunningJob, progress?: ProgressReport) => ReturnType<JobService["heartbeat"]>,
  ) {
    this.deadlineMs = row.deadlineAt?.getTime() ?? Number.POSITIVE_INFINITY;
  }

  get timedOut(): boolean {
    return this.abortedBy instanceof JobTimeoutError;
  }

  /** Made when the handler first reads it: most handlers never do. */
  get signal(): AbortSignal {
    if (!this.ac) {
      this.ac = new AbortController();
      if (this.abortedBy) this.ac.abort(this.abortedBy);
    }
    return this.ac.signal;
  }

  abort(reason: Error) {
    if (this.abortedBy) return;
    this.abortedBy = reason;
    this.ac?.abort(reason);
  }

  /** Keeps the report for the next heartbeat, and brings that heartbeat forward (PROGRESS_FLUSH_MS). */
  progress(p: ProgressReport): void {
    const bad = progressProblem(p);
    if (bad) throw new TypeError(bad);
    if (this.leaseLost) return;
    this.pendingProgress = { ...p };
    const soon = Math.max(performance.now(), this.lastBeatAt + PROGRESS_FLUSH_MS);
    if (soon < this.nextBeatAt) this.nextBeatAt = soon;
  }

  async heartbeat(): Promise<void> {
    if (this.leaseLost) return;
    const progress = this.pendingProgress;
    this.pendingProgress = undefined;
    this.lastBeatAt = performance.now();
    let r: Awaited<ReturnType<JobService["heartbeat"]>>;
    try {
      r = await this.beat(this, progress);
    } catch (e) {
      // Not sent: the next beat carries it, unless a newer report came meanwhile.
      this.pendingProgress ??= progress;
      throw e;
    }
    if (!r.ok && r.error === "timeout") this.abort(new JobTimeoutError(this.row.id));
    else if (!r.ok) {
      this.leaseLost = true;
      this.abort(new Error(`lease lost: ${r.error}`));
    } else if (r.value.cancelRequested) this.abort(new Error("cancel requested"));
  }
}

/**
 * The handler's context: a plain object whose own properties are `signal` (a getter, so the
 * AbortController is made only when read) and `heartbeat`, so handlers may destructure it,
 * spread it into their own, freeze it or log it without reaching the worker's state.
 */
export const context = (r: RunningJob): JobContext => ({
  get signal() {
    return r.signal;
  },
  // bind, not an arrow: tsx names every arrow in an object literal with an Object.defineProperty
  // call (esbuild's keepNames), per job, which cost a worker 2 µs per job.
  heartbeat: r.heartbeat.bind(r),
  progress: r.progress.bind(r),
});

