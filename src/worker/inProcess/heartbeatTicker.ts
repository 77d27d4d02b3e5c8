import type { Logger } from "pino";
import type { ProgressReport } from "../../domain/progress.js";
import type { WorkerRow } from "../../repositories/jobs/rows.js";
import type { JobService } from "../../services/jobs.js";
import { JobTimeoutError } from "./types.js";
import { RunningJob } from "./runningJob.js";

/**
 * Heartbeats: one ticker for every running job (a timer per job was a measurable share of a
 * busy worker's time), started while jobs run. A beat is due a third of a lease after the
 * last and goes out within a quarter of that. The tick also aborts jobs past their deadline.
 */
export class HeartbeatTicker {
  readonly beatEveryMs: number;
  private readonly tickMs: number;
  private readonly running = new Set<RunningJob>();
  private timer: NodeJS.Timeout | null = null;
  /** One function for every job (RunningJob calls it with itself), not a closure per job. */
  private readonly beat: (r: RunningJob, progress?: ProgressReport) => ReturnType<JobService["heartbeat"]>;
  private readonly tick = () => {
    const now = performance.now();
    const wall = Date.now();
    for (const r of this.running) {
      if (r.deadlineMs <= wall) r.abort(new JobTimeoutError(r.row.id));
      if (r.nextBeatAt > now) continue;
      r.nextBeatAt = now + this.beatEveryMs;
      r.heartbeat().catch((e: unknown) => this.log.warn({ err: e, job: r.row.id }, "heartbeat failed"));
    }
  };

  constructor(
    jobs: JobService,
    scope: string | null,
    leaseSeconds: number,
    private readonly log: Logger,
  ) {
    this.beatEveryMs = (leaseSeconds * 1000) / 3;
    this.tickMs = Math.min(1000, this.beatEveryMs / 4);
    this.beat = (r, progress) => jobs.heartbeat(r.row.id, scope, r.row.leaseToken!, leaseSeconds, progress);
  }

  /** The job's heartbeats start now; they go on until untrack() (its outcome is recorded). */
  start(row: WorkerRow): RunningJob {
    const r = new RunningJob(row, performance.now() + this.beatEveryMs, this.beat);
    this.running.add(r);
    this.timer ??= setInterval(this.tick, this.tickMs);
    return r;
  }

  untrack(r: RunningJob): void {
    this.running.delete(r);
    if (this.running.size === 0 && this.timer) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  /** No more heartbeats: the leases run out and the reaper takes the jobs back. */
  abandonAll(reason: Error): void {
    for (const r of [...this.running]) {
      this.untrack(r);
      r.abort(reason);
    }
  }
}
