// The in-process worker's public types and errors (what handlers and their callers see).
import type { WorkerDeps } from "../../container.js";
import type { JobDto, WorkerJobDto } from "../../services/representation.js";

/** The reason a handler's signal aborts at the attempt's deadline (the job's timeoutSeconds). */
export class JobTimeoutError extends Error {
  readonly code = "timeout";
  constructor(readonly jobId: string) {
    super(`job ${jobId}: execution timed out`);
    this.name = "JobTimeoutError";
  }
}

export interface JobContext {
  /** Aborts when a cancel is requested, the lease is lost, the attempt's deadline passes, or stop() gives up waiting. */
  signal: AbortSignal;
  /** Extends the lease now (it is also extended every third of the lease automatically). */
  heartbeat: () => Promise<void>;
  /**
   * Reports progress (percent 0..100, message ≤ 1 KiB, data ≤ 16 KiB of JSON; a TypeError
   * otherwise). Sent with the next heartbeat, brought forward to within about a second; only
   * the latest report is kept, so calling it per item is cheap.
   */
  progress: (p: { percent?: number; message?: string; data?: unknown }) => void;
}

/** `J`: the job as the handler gets it: the full representation, or WorkerJobDto with `fields: "worker"`. */
export type JobHandler<J = JobDto> = (job: J, ctx: JobContext) => Promise<unknown>;

/** Thrown by a handler: the job fails at once instead of being retried. */
export class NonRetryableError extends Error {
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
    this.name = "NonRetryableError";
  }
}

/**
 * kind → handler; only these kinds are claimed. `fields: "worker"`: handlers get only what a
 * worker reads (WorkerJobDto, as process-next's `fields: "worker"`), and the claim returns only
 * those columns: less for PostgreSQL to send and for the driver to parse (docs/workers.md).
 */
export type WorkerHandlers =
  | { fields?: "full" | undefined; handlers: Record<string, JobHandler> }
  | { fields: "worker"; handlers: Record<string, JobHandler<WorkerJobDto>> };

export type WorkerOptions = WorkerHandlers & WorkerSettings;
/** What a JOBLINE_HANDLERS_MODULE exports: the options without the container. */
export type HandlerSpec = WorkerHandlers & Omit<WorkerSettings, "container">;

interface WorkerSettings {
  /** A container, or anything with its services and logger. */
  container: Pick<WorkerDeps, "services" | "logger">;
  queues: string[];
  /** Handlers running at once; also the most jobs this worker holds leased. Default 10. */
  concurrency?: number;
  leaseSeconds?: number;
  /** Most jobs per claim statement (default: concurrency, at most MAX_BATCH). */
  batchSize?: number;
  workerId?: string;
  /** Long-poll wait of an idle claim (default 5000). */
  waitMs?: number;
  /** Claim only this tenant's jobs; default: every tenant (a platform worker). */
  tenant?: string;
}

export interface WorkerStats {
  claimed: number;
  succeeded: number;
  failed: number;
  /** Lease lost (reaped, cancelled, or taken over) before the outcome could be recorded. */
  lost: number;
}
