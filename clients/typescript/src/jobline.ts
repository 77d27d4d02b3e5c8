import {
  type ClaimedJob,
  createJoblineClient,
  type Job,
  type JobBulk,
  type JobBulkResult,
  type JoblineClient,
  type JoblineClientOptions,
  type JobSubmit,
  type paths,
  unwrap,
  type WorkerJob,
} from "./client.js";
import { type JobContext, type RunHttpWorkerOptions, runHttpWorker, type WorkerStats } from "./worker.js";

/** Job kinds and their payload types: `{ welcome: { to: string }; resize: { url: string } }`. */
export type KindMap = Record<string, unknown>;

/** A job of kind N, its payload typed by the map. */
export type TypedJob<K extends KindMap, N extends keyof K = keyof K> = N extends string
  ? Omit<Job, "kind" | "payload"> & { kind: N; payload: K[N] }
  : never;
/** A leased job of kind N (what a handler gets), its payload typed by the map. */
export type TypedClaimedJob<K extends KindMap, N extends keyof K = keyof K> = N extends string
  ? Omit<ClaimedJob, "kind" | "payload"> & { kind: N; payload: K[N] }
  : never;

/** A leased job of kind N as a handler gets it (process-next's worker fields), its payload typed by the map. */
export type TypedWorkerJob<K extends KindMap, N extends keyof K = keyof K> = N extends string
  ? Omit<WorkerJob, "kind" | "payload"> & { kind: N; payload: K[N] }
  : never;

/** Everything `POST /v1/jobs` takes besides queue, kind and payload, plus its Idempotency-Key. */
export type SubmitOptions = Omit<JobSubmit, "queue" | "kind" | "payload"> & { idempotencyKey?: string; signal?: AbortSignal };

/** One function for every kind (a union of typed jobs), or one per kind (only those are leased). */
export type WorkHandler<K extends KindMap> =
  | ((job: TypedWorkerJob<K>, ctx: JobContext) => unknown)
  | { [N in keyof K & string]?: (job: TypedWorkerJob<K, N>, ctx: JobContext) => unknown };

export type WorkOptions = Omit<RunHttpWorkerOptions, "baseUrl" | "apiKey" | "client" | "queues" | "handlers" | "signal" | "onError"> & {
  /** Also stops the worker when aborted (optional: `worker.stop()` does it). */
  signal?: AbortSignal;
  /** Default: the client's onError. */
  onError?: (error: unknown, job?: WorkerJob) => void;
};

/** A running worker. */
export interface Worker {
  /** Stops polling, waits for running handlers and their reports, and resolves with the counts. */
  stop(): Promise<WorkerStats>;
  /** Settles when the worker ends: rejects (after draining) when it could not reach the server or was refused. */
  readonly done: Promise<WorkerStats>;
}

export interface JoblineOptions extends JoblineClientOptions {
  /** Told about retries and errors (transport, lost leases, refused reports). Default: one line on console.error. */
  onError?: (error: unknown, job?: WorkerJob) => void;
}

/** GET /v1/jobs's filters: queue, status, kind, batchId, tag, createdAfter, createdBefore, limit, cursor. */
export type JobListQuery = NonNullable<paths["/v1/jobs"]["get"]["parameters"]["query"]>;

/** Operator actions on jobs (DESIGN.md "Operator control and visibility"); each throws JoblineApiError on a non-2xx answer. */
export interface JobMethods<K extends KindMap> {
  /** failed | cancelled → queued, attempts reset (409 `not_retryable` otherwise). */
  retry(id: string): Promise<TypedJob<K>>;
  /** A finished job (409 `not_finished` otherwise). */
  delete(id: string): Promise<void>;
  /** cancel | retry | delete many, by `ids` or a `filter`: `{ matched, changed, skipped }`. */
  bulk(body: JobBulk): Promise<JobBulkResult>;
  /** One page, newest first; pass `nextCursor` back as `cursor`. */
  list(query?: JobListQuery): Promise<{ items: Array<TypedJob<K>>; nextCursor: string | null }>;
  /**
   * The job once it is finished (succeeded, failed, cancelled), or as it is when `timeoutMs`
   * (default 30000) has passed. The server holds each request up to 30 s and answers when the
   * job finishes; longer waits are several such requests, never a polling loop.
   */
  wait(id: string, options?: { timeoutMs?: number; signal?: AbortSignal }): Promise<TypedJob<K>>;
}

const FINISHED = new Set(["succeeded", "failed", "cancelled"]);
const MAX_WAIT_MS = 30_000;

const describe = (e: unknown) => (e instanceof Error ? e.message : String(e));

/** Logs one line per error: the default onError. */
export function logError(error: unknown, job?: WorkerJob): void {
  console.error(`jobline: ${job ? `job ${job.id} (${job.kind}): ` : ""}${describe(error)}`);
}

/**
 * The high-level client: `submit()` and `work()`, typed by a map of kinds to payloads.
 * `api` is the low-level typed openapi-fetch client for everything else.
 */
export class Jobline<K extends KindMap = KindMap> {
  readonly api: JoblineClient;
  readonly onError: (error: unknown, job?: WorkerJob) => void;
  readonly jobs: JobMethods<K>;

  constructor(options: JoblineOptions) {
    const { onError = logError, ...rest } = options;
    if (!rest.baseUrl) throw new TypeError("Jobline: baseUrl is required (e.g. http://127.0.0.1:8080)");
    this.onError = onError;
    this.api = createJoblineClient({ onRetry: (e) => onError(e), ...rest });
    const api = this.api;
    const path = (id: string) => ({ params: { path: { id } } });
    this.jobs = {
      retry: async (id) => (await unwrap(api.POST("/v1/jobs/{id}/retry", { ...path(id), body: {} }))) as TypedJob<K>,
      delete: async (id) => {
        await unwrap(api.DELETE("/v1/jobs/{id}", path(id)));
      },
      bulk: (body) => unwrap(api.POST("/v1/jobs/bulk", { body })),
      list: async (query = {}) => (await unwrap(api.GET("/v1/jobs", { params: { query } }))) as { items: Array<TypedJob<K>>; nextCursor: string | null },
      wait: async (id, { timeoutMs = MAX_WAIT_MS, signal } = {}) => {
        const until = Date.now() + timeoutMs;
        for (;;) {
          const waitMs = Math.max(0, Math.min(MAX_WAIT_MS, until - Date.now()));
          const job = (await unwrap(
            api.GET("/v1/jobs/{id}", { params: { path: { id }, query: { waitMs } }, ...(signal ? { signal } : {}) }),
          )) as TypedJob<K>;
          if (FINISHED.has(job.status) || waitMs === 0 || Date.now() >= until) return job;
        }
      },
    };
  }

  /** Submits one job and returns it (a 2xx), or throws JoblineApiError / JoblineConnectionError. */
  async submit<N extends keyof K & string>(queue: string, kind: N, payload: K[N], options: SubmitOptions = {}): Promise<TypedJob<K, N>> {
    const { idempotencyKey, signal, ...fields } = options;
    const job = await unwrap(
      this.api.POST("/v1/jobs", {
        body: { ...fields, queue, kind, payload },
        ...(idempotencyKey ? { params: { header: { "idempotency-key": idempotencyKey } } } : {}),
        ...(signal ? { signal } : {}),
      }),
    );
    return job as TypedJob<K, N>;
  }

  /** The job now. */
  async get(id: string): Promise<TypedJob<K>> {
    return (await unwrap(this.api.GET("/v1/jobs/{id}", { params: { path: { id } } }))) as TypedJob<K>;
  }

  /** The jobs that named this job in their `dependsOn` (first page; docs/workflows.md). */
  async dependents(id: string, options: { limit?: number; cursor?: string } = {}) {
    return unwrap(this.api.GET("/v1/jobs/{id}/dependents", { params: { path: { id }, query: options } }));
  }

  /**
   * Runs handlers for jobs of `queues` until `stop()`. The handler's return value is the
   * job's result; a throw fails the attempt (retried while attempts remain; `NonRetryableError`
   * fails it for good). Until the server has answered once, a connection error or a refused
   * key ends the worker at once (reported to onError, and `done`/`stop()` reject with it).
   */
  work(queues: string | string[], handler: WorkHandler<K>, options: WorkOptions = {}): Worker {
    const { signal: outer, onError = this.onError, ...rest } = options;
    const ctl = new AbortController();
    const relay = () => ctl.abort(outer?.reason);
    if (outer?.aborted) ctl.abort(outer.reason);
    else outer?.addEventListener("abort", relay, { once: true });
    const done = runHttpWorker({
      failFast: true,
      ...rest,
      client: this.api,
      queues: typeof queues === "string" ? [queues] : queues,
      handlers: handler as RunHttpWorkerOptions["handlers"],
      signal: ctl.signal,
      onError,
    }).finally(() => outer?.removeEventListener("abort", relay));
    // Reported (logged by default) even when nobody awaits the worker, and never an unhandled rejection.
    done.catch((e: unknown) => onError(e));
    return {
      done,
      stop: () => {
        ctl.abort();
        return done;
      },
    };
  }
}
