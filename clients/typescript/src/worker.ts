import { createJoblineClient, JoblineApiError, type JoblineClient, type paths, type WorkerJob } from "./client.js";

/** What a handler gets besides the job. */
export interface JobContext {
  /**
   * Aborted when the job must stop: a heartbeat reported `cancelRequested`
   * (reason: `JobCancelRequestedError`), the lease was lost (`LeaseLostError`), or the
   * attempt's `deadlineAt` (the job's `timeoutSeconds`) passed (`JobTimeoutError`; the job is
   * then failed with code `timeout`, retried per its attempts).
   * Pass it on to fetch() and friends. After a cancel request the outcome is still reported
   * (a throw becomes `cancelled`, a return `succeeded`: the work was done); after a lost lease
   * nothing is reported (the job is no longer ours).
   */
  signal: AbortSignal;
  /** The worker's stop signal: aborted when the worker is asked to stop (the handler may finish or bail out). */
  stopping: AbortSignal;
  workerId: string;
  /** Extends the lease now (heartbeats already run every third of the lease). */
  heartbeat: () => Promise<void>;
  /**
   * Reports progress: sent with the next heartbeat, which is brought forward to within about a
   * second (PROGRESS_FLUSH_MS) of the report; only the latest report is kept, so calling it per
   * item is cheap. Throws a TypeError beyond the limits (percent 0..100, message ≤ 1 KiB, data
   * ≤ 16 KiB of JSON).
   */
  progress: (p: Progress) => void;
}

export interface Progress {
  percent?: number;
  message?: string;
  data?: unknown;
}

/** A heartbeat carrying progress goes out at most this long after the report, and at most once per this. */
export const PROGRESS_FLUSH_MS = 1000;

const utf8Bytes = (s: string) => new TextEncoder().encode(s).length;
function checkProgress(p: Progress): void {
  if (p.percent !== undefined && !(typeof p.percent === "number" && p.percent >= 0 && p.percent <= 100))
    throw new TypeError("progress.percent must be a number from 0 to 100");
  if (p.message !== undefined && (typeof p.message !== "string" || utf8Bytes(p.message) > 1024))
    throw new TypeError("progress.message must be a string of at most 1 KiB");
  if (p.data !== undefined && utf8Bytes(JSON.stringify(p.data) ?? "null") > 16 * 1024)
    throw new TypeError("progress.data exceeds 16 KiB of JSON");
}

export type JobHandler = (job: WorkerJob, ctx: JobContext) => unknown;

export interface RunHttpWorkerOptions {
  /** Either `baseUrl` + `apiKey` (a key with the `worker` role), or an existing `client`. */
  baseUrl?: string;
  apiKey?: string;
  client?: JoblineClient;
  queues: string[];
  /** One handler per job kind (only these kinds are leased), or one handler for every kind. */
  handlers: Record<string, JobHandler> | JobHandler;
  /** Handlers running at once (default 1). */
  concurrency?: number;
  /** Lease per claim and per heartbeat, 1..3600 (default 60). Heartbeats run every third of it. */
  leaseSeconds?: number;
  /** Long-poll wait of each process-next call, 0..30000 (default 10000). */
  waitMs?: number;
  /** Stops the worker: the long poll is aborted, in-flight handlers finish, then the promise resolves. */
  signal: AbortSignal;
  workerId?: string;
  /**
   * What process-next answers for each job (default "worker": only the fields a worker needs,
   * WorkerJob, a third of the bytes). "full": every field of ClaimedJob (a server older than
   * the option answers that anyway; the handler's type stays WorkerJob, cast it).
   */
  fields?: "worker" | "full";
  /** Told about transport errors and lost leases (default: nothing). */
  onError?: (error: unknown, job?: WorkerJob) => void;
  /**
   * Until a first poll has been answered, a transport error stops the worker (it rejects with
   * it) instead of being retried: a wrong URL fails at once. Default false (retry from the start).
   */
  failFast?: boolean;
  /**
   * After the stop, how long running handlers and unsent reports get (default 30000). Then the
   * worker resolves anyway: heartbeats end, and the jobs not yet reported count as `abandoned`
   * (the reaper requeues them after their lease).
   */
  drainTimeoutMs?: number;
}

export interface WorkerStats {
  claimed: number;
  succeeded: number;
  /** Reported with POST /fail (whether the job was requeued, failed or cancelled). */
  failed: number;
  /** Neither completed nor failed by us: the lease was lost (the reaper or another worker owns the outcome). */
  abandoned: number;
}

/** Throw this (or any error with `retryable = false`) from a handler to fail the job without retry. */
export class NonRetryableError extends Error {
  readonly retryable = false;
  readonly code: string | undefined;
  constructor(message: string, options?: { code?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = "NonRetryableError";
    this.code = options?.code;
  }
}

export class JobCancelRequestedError extends Error {
  constructor(readonly jobId: string) {
    super(`job ${jobId}: cancel requested`);
    this.name = "JobCancelRequestedError";
  }
}

export class JobTimeoutError extends Error {
  readonly code = "timeout";
  constructor(readonly jobId: string) {
    super(`job ${jobId}: execution timed out`);
    this.name = "JobTimeoutError";
  }
}

export class LeaseLostError extends Error {
  constructor(
    readonly jobId: string,
    readonly status: number,
  ) {
    super(`job ${jobId}: lease lost (HTTP ${status})`);
    this.name = "LeaseLostError";
  }
}

/**
 * An AbortController made only when its signal is first read: most handlers never read it, and
 * making one per job was a measurable share of a busy worker's time (docs/performance.md).
 */
class LazyAbort {
  private ctl: AbortController | null = null;
  private why: unknown;
  private done = false;
  get signal(): AbortSignal {
    if (!this.ctl) {
      this.ctl = new AbortController();
      if (this.done) this.ctl.abort(this.why);
    }
    return this.ctl.signal;
  }
  get reason(): unknown {
    return this.why;
  }
  /** The first reason wins, as AbortController's. */
  abort(reason: unknown): void {
    if (this.done) return;
    this.done = true;
    this.why = reason;
    this.ctl?.abort(reason);
  }
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    if (signal?.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal?.removeEventListener("abort", done);
      resolve();
    }
    signal?.addEventListener("abort", done, { once: true });
  });

/** How long a finished job's completion waits for a poll to carry it before it is sent on its own. */
const ACK_FLUSH_MS = 20;
/** Attempts of one drain batch (stop) across connection errors and 5xx answers. */
const DRAIN_ATTEMPTS = 6;
const MAX_MESSAGE = 10_000;
const MAX_CODE = 200;

/** A string the API accepts: no NUL, no lone surrogate, bounded. */
const clean = (s: string, max: number) => s.replaceAll("\u0000", "\uFFFD").toWellFormed().slice(0, max).toWellFormed();

function errorInfo(err: unknown): { message: string; code?: string; retryable: boolean; retryAfterSeconds?: number } {
  const e = (typeof err === "object" && err !== null ? err : {}) as {
    message?: unknown;
    code?: unknown;
    retryable?: unknown;
    retryAfterSeconds?: unknown;
  };
  const message = typeof e.message === "string" && e.message ? e.message : String(err);
  const out: { message: string; code?: string; retryable: boolean; retryAfterSeconds?: number } = {
    message: clean(message, MAX_MESSAGE) || "error",
    retryable: e.retryable !== false,
  };
  if (typeof e.code === "string" && e.code) out.code = clean(e.code, MAX_CODE);
  if (typeof e.retryAfterSeconds === "number" && Number.isFinite(e.retryAfterSeconds) && e.retryAfterSeconds >= 0)
    out.retryAfterSeconds = Math.min(e.retryAfterSeconds, 31_536_000);
  return out;
}

/** Lost-lease answers: the job is not ours any more (404 can only mean it was deleted). */
const isLeaseLost = (status: number) => status === 404 || status === 409;
/** Answers that will not change by retrying the same request. */
const isFatal = (status: number) => status === 400 || status === 401 || status === 403;

/**
 * Runs job handlers against a jobline server over HTTP: long-polls `POST /v1/process-next`
 * for as many jobs as there are free slots, runs each with its kind's handler, heartbeats
 * every third of the lease, and reports `complete` (the handler's return value is the
 * result) or `fail` (the thrown error's `message`/`code`; `retryable = false` fails it for
 * good). Completions ride the next poll (`complete`): when every slot is busy, the jobs that
 * end together free their slots and go out in one poll asking for that many jobs (up to 100).
 * Completions that end while a poll is out (it may long-poll) go after 20 ms in one
 * POST /v1/jobs/complete (a single one to its own route).
 * Resolves when `signal` aborts and every in-flight handler has finished; rejects (after
 * draining) when the server refuses the worker's requests (400/401/403).
 */
export async function runHttpWorker(options: RunHttpWorkerOptions): Promise<WorkerStats> {
  const { queues, handlers, signal } = options;
  const concurrency = options.concurrency ?? 1;
  const leaseSeconds = options.leaseSeconds ?? 60;
  const waitMs = options.waitMs ?? 10_000;
  const fields = options.fields ?? "worker";
  const drainTimeoutMs = options.drainTimeoutMs ?? 30_000;
  const workerId = options.workerId ?? `http-worker-${globalThis.crypto.randomUUID().slice(0, 8)}`;
  const onError = (error: unknown, job?: WorkerJob) => {
    try {
      options.onError?.(error, job);
    } catch {
      // A failing error callback must not break the loop.
    }
  };
  const kinds = typeof handlers === "function" ? null : Object.keys(handlers);
  if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError("concurrency must be a positive integer");
  if (!Number.isInteger(leaseSeconds) || leaseSeconds < 1 || leaseSeconds > 3600) throw new RangeError("leaseSeconds must be 1..3600");
  if (!Number.isInteger(waitMs) || waitMs < 0 || waitMs > 30_000) throw new RangeError("waitMs must be 0..30000");
  if (!Number.isFinite(drainTimeoutMs) || drainTimeoutMs < 0) throw new RangeError("drainTimeoutMs must be a number >= 0");
  if (queues.length === 0) throw new RangeError("queues must not be empty");
  if (kinds?.length === 0) throw new RangeError("handlers must not be empty");
  let client = options.client;
  if (!client) {
    if (!options.baseUrl || !options.apiKey) throw new TypeError("runHttpWorker: pass client, or baseUrl and apiKey");
    client = createJoblineClient({ baseUrl: options.baseUrl, apiKey: options.apiKey });
  }
  const api = client;

  const stats: WorkerStats = { claimed: 0, succeeded: 0, failed: 0, abandoned: 0 };
  const inFlight = new Set<Promise<void>>();
  let slotFreed: () => void = () => {};
  let fatal: unknown = null;
  /** Set at the stop: no report retries past it. `closed`: the drain timed out, nothing more is sent. */
  let drainBy = Number.POSITIVE_INFINITY;
  let closed = false;
  const leases = new Set<Lease>();
  const drainLeft = () => drainBy - Date.now();

  /**
   * Retries a report (complete/fail are idempotent for one lease token) across transport errors
   * and 503, for as long as the job may still be ours: until an answer below 500, a heartbeat
   * finds the lease lost, or no heartbeat has confirmed it for a whole lease (the reaper may have
   * taken it). The job's heartbeats go on meanwhile, so a report that waits out an outage of the
   * API or its database does not let the lease lapse and the job run again elsewhere.
   */
  async function report<R extends { response: Response; error?: unknown }>(
    job: WorkerJob,
    lease: Lease,
    call: () => Promise<R>,
    mayHaveCommitted = false,
  ): Promise<R | null> {
    let last: R | null = null;
    let internal = 0;
    for (let attempt = 0; !closed; attempt++) {
      try {
        last = await call();
        const status = last.response.status;
        if (status < 500) return last;
        onError(new JoblineApiError(status, last.error), job);
        // 503 says "send it again"; another 5xx is the server's own fault, tried a few times only.
        if (status !== 503 && ++internal > 5) return last;
      } catch (e) {
        onError(e, job);
      }
      // A completion that may have committed already (its answer was lost): that commit is what
      // makes the heartbeats answer 409, so a lost lease ends its resends only after DRAIN_ATTEMPTS.
      const hold = lease.mayHold() || (mayHaveCommitted && attempt + 1 < DRAIN_ATTEMPTS);
      if (!hold || closed || drainLeft() <= 0) return last;
      await sleep(Math.min(200 * 2 ** attempt, 2_000, drainLeft()));
    }
    return last;
  }

  interface Lease {
    /** Aborted on a cancel request or a lost lease (the handler's ctx.signal). */
    readonly signal: AbortSignal;
    /** Why it aborted (undefined while it has not). */
    reason: () => unknown;
    lost: () => LeaseLostError | null;
    /** False once the lease is lost, or unconfirmed for a whole lease by this process's clock. */
    mayHold: () => boolean;
    beat: () => Promise<void>;
    progress: (p: Progress) => void;
    /** Ends the heartbeats: the job's outcome is recorded, or it is no longer ours. */
    release: () => Promise<void>;
  }

  /** Heartbeats every third of the lease, from the claim until release(). */
  function keepLease(job: WorkerJob): Lease {
    const ctl = new LazyAbort();
    let lost: LeaseLostError | null = null;
    let confirmedAt = Date.now();
    let pending: Progress | undefined;
    let lastSent = Date.now();
    const postHeartbeat = (progress: Progress | undefined) =>
      api.POST("/v1/jobs/{id}/heartbeat", {
        params: { path: { id: job.id } },
        body: { leaseToken: job.leaseToken, leaseSeconds, ...(progress ? { progress } : {}) },
      });
    const beat = async () => {
      if (lost) return;
      const sent = Date.now();
      const progress = pending;
      pending = undefined;
      lastSent = sent;
      let r: Awaited<ReturnType<typeof postHeartbeat>>;
      try {
        r = await postHeartbeat(progress);
      } catch (e) {
        // Not sent: the next beat carries it, unless a newer report came meanwhile.
        pending ??= progress;
        throw e;
      }
      if (r.data) {
        confirmedAt = sent;
      } else if (r.response.status === 409 && (r.error as { code?: unknown } | undefined)?.code === "timeout") {
        timeUp();
        return;
      }
      if (r.data) {
        if (r.data.cancelRequested) ctl.abort(new JobCancelRequestedError(job.id));
      } else if (isLeaseLost(r.response.status)) {
        lost = new LeaseLostError(job.id, r.response.status);
        ctl.abort(lost);
      } else {
        throw new JoblineApiError(r.response.status, r.error);
      }
    };
    // Heartbeats chain (never overlap); a transport error is reported and retried at the next tick.
    let timer: ReturnType<typeof setTimeout> | null = null;
    // At the deadline (by this process's clock; a heartbeat answered `timeout` says so too).
    const timeUp = () => {
      ctl.abort(new JobTimeoutError(job.id));
    };
    const deadline = job.deadlineAt ? setTimeout(timeUp, Math.max(0, Date.parse(job.deadlineAt) - Date.now())) : null;
    let beating: Promise<void> = Promise.resolve();
    let released = false;
    let dueAt = 0;
    // A pending report brings the next beat forward to PROGRESS_FLUSH_MS after the last one.
    const delay = () => (pending ? Math.max(0, lastSent + PROGRESS_FLUSH_MS - Date.now()) : (leaseSeconds * 1000) / 3);
    const schedule = () => {
      if (released || lost) return;
      const ms = delay();
      dueAt = Date.now() + ms;
      timer = setTimeout(() => {
        timer = null;
        beating = beat()
          .catch((e: unknown) => onError(e, job))
          .finally(schedule);
      }, ms);
    };
    schedule();
    const lease: Lease = {
      get signal() {
        return ctl.signal;
      },
      reason: () => ctl.reason,
      lost: () => lost,
      mayHold: () => lost === null && Date.now() < confirmedAt + leaseSeconds * 1000,
      beat,
      progress: (p) => {
        checkProgress(p);
        if (released || lost) return;
        pending = { ...p };
        // A beat in flight schedules the next one itself (delay() sees the report).
        if (timer && dueAt > Date.now() + delay()) {
          clearTimeout(timer);
          schedule();
        }
      },
      release: async () => {
        released = true;
        leases.delete(lease);
        if (timer) clearTimeout(timer);
        if (deadline) clearTimeout(deadline);
        await beating;
      },
    };
    leases.add(lease);
    return lease;
  }

  async function runJob(job: WorkerJob): Promise<void> {
    // Heartbeats run from here until the outcome is recorded (or the lease is lost), not only
    // while the handler runs: its completion may wait for the next poll or for the API.
    const lease = keepLease(job);
    let outcome: { ok: true; result: unknown } | { ok: false; error: unknown };
    try {
      const handler = typeof handlers === "function" ? handlers : handlers[job.kind];
      if (!handler) throw new NonRetryableError(`no handler for kind ${job.kind}`, { code: "no_handler" });
      // signal: a getter, so the AbortController is made only if the handler reads it.
      const ctx: JobContext = {
        get signal() {
          return lease.signal;
        },
        stopping: signal,
        workerId,
        heartbeat: lease.beat,
        progress: lease.progress,
      };
      outcome = { ok: true, result: await handler(job, ctx) };
    } catch (error) {
      outcome = { ok: false, error };
    }

    const lost = lease.lost();
    if (lost) {
      await lease.release();
      stats.abandoned++;
      onError(lost, job);
      return;
    }
    // Stopped at its deadline: reported as the timeout it is, whatever the handler threw.
    const why = lease.reason();
    if (!outcome.ok) return failJob(job, lease, why instanceof JobTimeoutError ? why : outcome.error);
    // The completion waits for the next poll (sent as soon as a slot frees, with every outcome
    // finished by then); while a poll is out, a flush after ACK_FLUSH_MS sends what it did not take.
    acks.push({ job, lease, result: outcome.result });
    if (!pollComing && !signal.aborted) armFlush();
  }

  const completeBody = (job: WorkerJob, result: unknown) =>
    result === undefined ? { leaseToken: job.leaseToken } : { leaseToken: job.leaseToken, result };

  async function completeDirect(a: Ack): Promise<void> {
    // Sent on its own after a poll or a batch left it unanswered: it may have committed there.
    const r = await report(
      a.job,
      a.lease,
      () => api.POST("/v1/jobs/{id}/complete", { params: { path: { id: a.job.id } }, body: completeBody(a.job, a.result) }),
      true,
    );
    await completed(a, r ? { status: r.response.status, error: r.error } : null);
  }

  /** Acts on a complete's answer (null: no answer while the job could still be ours). */
  async function completed({ job, lease }: Ack, answer: { status: number; error?: unknown } | null): Promise<void> {
    if (answer?.status === 400) {
      // The server refused the result itself (e.g. not storable as JSON): fail the job for good, saying why.
      const refused = new JoblineApiError(400, answer.error);
      return failJob(job, lease, new NonRetryableError(`result refused: ${refused.message}`, { code: "invalid_result" }));
    }
    await lease.release();
    if (answer?.status === 200) stats.succeeded++;
    else abandon(job, lease, "completion", answer);
  }

  /** A report that did not land: the job is left to the reaper (or is someone else's already). */
  function abandon(job: WorkerJob, lease: Lease, what: string, answer: { status: number; error?: unknown } | null) {
    stats.abandoned++;
    onError(answer ? new JoblineApiError(answer.status, answer.error) : (lease.lost() ?? new Error(`job ${job.id}: no answer to its ${what} while its lease lasted`)), job);
  }

  async function failJob(job: WorkerJob, lease: Lease, error: unknown): Promise<void> {
    const info = errorInfo(error);
    const r = await report(job, lease, () =>
      api.POST("/v1/jobs/{id}/fail", {
        params: { path: { id: job.id } },
        body: {
          leaseToken: job.leaseToken,
          error: info.code === undefined ? { message: info.message } : { message: info.message, code: info.code },
          retryable: info.retryable,
          ...(info.retryAfterSeconds === undefined ? {} : { retryAfterSeconds: info.retryAfterSeconds }),
        },
      }),
    );
    await lease.release();
    if (r?.data) stats.failed++;
    else abandon(job, lease, "failure", r && { status: r.response.status, error: r.error });
  }

  /** A job that succeeded, with its result and its lease (still heartbeating), not yet acknowledged. */
  type Ack = { job: WorkerJob; lease: Lease; result: unknown };
  /** Completions waiting for the next poll, and the reports started from a poll's answers. */
  const acks: Ack[] = [];
  const reporting = new Set<Promise<void>>();
  const track = (job: WorkerJob, p: Promise<void>) => {
    const t: Promise<void> = p.catch((e: unknown) => onError(e, job)).finally(() => reporting.delete(t));
    reporting.add(t);
  };
  /** Completions a poll did not settle (it failed, or answered 5xx for them): each on its own, with retries. */
  const sendDirect = (items: Ack[]) => {
    for (const a of items) track(a.job, completeDirect(a));
  };
  /** Acts on per-item answers (a poll's `completed`, or POST /v1/jobs/complete's `items`); an item left unanswered is sent again alone. */
  const settle = (carried: Ack[], answers: ReadonlyArray<{ id: string; status: number; problem?: unknown }>) => {
    for (const [i, a] of carried.entries()) {
      const answer = answers[i];
      if (!answer || answer.id !== a.job.id || answer.status >= 500) sendDirect([a]);
      else track(a.job, completed(a, { status: answer.status, error: answer.problem }));
    }
  };
  /** Completions no poll is about to carry: one request for all of them (a single one goes to its own route). */
  let flushTimer: ReturnType<typeof setTimeout> | null = null;
  const armFlush = () => {
    flushTimer ??= setTimeout(flush, ACK_FLUSH_MS);
  };
  function flush() {
    flushTimer = null;
    if (pollComing) return;
    while (acks.length > 0) {
      const items = acks.splice(0, 100);
      if (items.length === 1) {
        sendDirect(items);
        continue;
      }
      const body = { items: items.map(({ job, result }) => ({ id: job.id, ...completeBody(job, result) })) };
      const p = api.POST("/v1/jobs/complete", { body }).then(
        (r) => (r.data ? settle(items, r.data.items) : sendDirect(items)),
        () => sendDirect(items),
      );
      track(items[0]!.job, p);
    }
  }

  const start = (job: WorkerJob) => {
    stats.claimed++;
    const p: Promise<void> = runJob(job)
      .catch((e: unknown) => onError(e, job))
      .finally(() => {
        inFlight.delete(p);
        slotFreed();
      });
    inFlight.add(p);
  };

  /** True from the moment the loop waits for a slot until its next poll is sent: finished jobs' completions ride that poll. */
  let pollComing = false;
  const untilSlotOrStop = () =>
    new Promise<void>((resolve) => {
      pollComing = true;
      const done = () => {
        signal.removeEventListener("abort", done);
        slotFreed = () => {};
        resolve();
      };
      slotFreed = done;
      if (signal.aborted) return done();
      signal.addEventListener("abort", done, { once: true });
    });

  type PollBody = paths["/v1/process-next"]["post"]["requestBody"]["content"]["application/json"];
  /**
   * One poll, cut when the worker stops. Each gets a signal of its own: fetch keeps its abort
   * listener on the signal it was given until the request is garbage-collected, so polls
   * given the worker's own signal piled thousands of listeners onto it (and onto a signal
   * shared by several workers), with MaxListenersExceededWarning.
   */
  async function poll(body: PollBody) {
    const cut = new AbortController();
    const relay = () => cut.abort(signal.reason);
    signal.addEventListener("abort", relay, { once: true });
    try {
      return await api.POST("/v1/process-next", { body, signal: cut.signal });
    } finally {
      signal.removeEventListener("abort", relay);
    }
  }

  let backoff = 0;
  let reached = false;
  while (!signal.aborted && fatal === null) {
    if (concurrency - inFlight.size <= 0) {
      await untilSlotOrStop();
      // Handlers that end together (in one turn of the event loop) free their slots together:
      // one wide poll for all of them, carrying all their completions, instead of one each.
      await sleep(0);
      continue;
    }
    const free = concurrency - inFlight.size;
    pollComing = false;
    const carried = acks.splice(0, 100);
    if (acks.length > 0) armFlush();
    try {
      const complete = carried.map(({ job, result }) => ({ id: job.id, ...completeBody(job, result) }));
      const r = await poll({ queues, ...(kinds ? { kinds } : {}), workerId, max: Math.min(free, 100), leaseSeconds, waitMs, fields, ...(complete.length ? { complete } : {}) });
      reached = true;
      if (r.data) {
        backoff = 0;
        for (const job of r.data.jobs) start(job);
        settle(carried, r.data.completed ?? []);
        continue;
      }
      // Applied or not, a completion may be sent again (it is idempotent for its lease token).
      sendDirect(carried);
      // A result the request's schema refuses, or too large a body, fails the whole poll: the
      // completions go on their own (where only a refused one's job fails), and the loop polls again.
      const status = r.response.status;
      if (carried.length > 0 && status >= 400 && status < 500 && status !== 401 && status !== 403) {
        if (status !== 400 && status !== 413) onError(new JoblineApiError(status, r.error));
        continue;
      }
      const err = new JoblineApiError(r.response.status, r.error);
      if (isFatal(r.response.status)) {
        fatal = err;
        break;
      }
      onError(err);
    } catch (e) {
      // Cut by the stop: its completions may have committed. The drain resends them in one
      // batch (a replay is answered 200 for the same lease token).
      if (signal.aborted) {
        acks.unshift(...carried);
        break;
      }
      sendDirect(carried);
      if (options.failFast && !reached) {
        fatal = e;
        break;
      }
      onError(e);
    }
    backoff = Math.min(Math.max(backoff * 2, 250), 30_000);
    await sleep(backoff, signal);
  }

  // The drain below sends what is left itself: no flush timer outlives the worker.
  pollComing = true;
  if (flushTimer) clearTimeout(flushTimer);
  drainBy = Date.now() + drainTimeoutMs;
  const timeout = new AbortController();
  let drained = false;
  const drain = (async () => {
    while (inFlight.size > 0 || reporting.size > 0 || acks.length > 0) {
      const items = acks.splice(0);
      while (items.length > 0) {
        const chunk = items.splice(0, 100);
        track(chunk[0]!.job, deliver(chunk));
      }
      await Promise.allSettled([...inFlight, ...reporting]);
    }
    drained = true;
  })();
  await Promise.race([drain, sleep(drainTimeoutMs, timeout.signal)]);
  timeout.abort();
  let out = { ...stats };
  if (!drained) {
    // Out of time: stop heartbeating; what is not reported yet is left to the reaper.
    closed = true;
    for (const l of leases) void l.release();
    out = { ...stats, abandoned: stats.claimed - stats.succeeded - stats.failed };
    onError(new Error(`worker ${workerId}: drain timed out after ${drainTimeoutMs} ms; ${out.abandoned - stats.abandoned} job(s) left unreported`));
  }
  if (fatal !== null) throw fatal;
  return out;

  /**
   * Completions at the stop (some may have committed on a poll the stop cut) in one
   * POST /v1/jobs/complete, retried a few times across connection errors and 5xx answers,
   * whatever the heartbeats say: a heartbeat answers 409 once our own completion committed,
   * and a resend for the same lease token is answered 200, so the server's answer decides.
   */
  async function deliver(items: Ack[]): Promise<void> {
    let left = items;
    // After a timed-out drain nothing is sent: the stats already count these as abandoned.
    for (let attempt = 1; left.length > 0 && !closed; attempt++) {
      try {
        const r = await api.POST("/v1/jobs/complete", {
          body: { items: left.map(({ job, result }) => ({ id: job.id, ...completeBody(job, result) })) },
        });
        if (r.data) {
          const answers = r.data.items;
          const retry: Ack[] = [];
          for (const [i, a] of left.entries()) {
            const answer = answers[i];
            if (!answer || answer.id !== a.job.id || answer.status >= 500) retry.push(a);
            else track(a.job, completed(a, { status: answer.status, error: answer.problem }));
          }
          left = retry;
        } else if (r.response.status < 500) {
          // The body as a whole was refused (a result the schema refuses, too large): one by one.
          return sendDirect(left);
        } else onError(new JoblineApiError(r.response.status, r.error));
      } catch (e) {
        onError(e);
      }
      if (left.length === 0) return;
      if (attempt >= DRAIN_ATTEMPTS || closed || drainLeft() <= 0) {
        for (const a of left) track(a.job, completed(a, null));
        return;
      }
      await sleep(Math.min(100 * 2 ** attempt, 2_000, drainLeft()));
    }
  }
}
