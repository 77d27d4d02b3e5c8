import createClient, { type Client, type ClientOptions, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.gen.js";

export type { components, paths } from "./schema.gen.js";

type Schemas = components["schemas"];
export type Job = Schemas["Job"];
export type ClaimedJob = Schemas["ClaimedJob"];
/** A leased job as process-next answers it with `fields: "worker"` (what runHttpWorker's handlers get). */
export type WorkerJob = Schemas["WorkerJob"];
export type Batch = Schemas["Batch"];
export type Problem = Schemas["Problem"];
export type JobStatus = Job["status"];
/** The body of `POST /v1/jobs/bulk` and its answer. */
export type JobBulk = Schemas["JobBulk"];
export type JobBulkResult = Schemas["JobBulkResult"];
/** The body of `POST /v1/jobs`. */
export type JobSubmit = paths["/v1/jobs"]["post"]["requestBody"]["content"]["application/json"];
export type Schedule = Schemas["Schedule"];
export type ScheduleCreate = Schemas["ScheduleCreate"];
export type SchedulePatch = Schemas["SchedulePatch"];

/**
 * Cron schedules (`/v1/schedules`). Each method resolves to the answer's body and throws
 * `JoblineApiError` for a non-2xx answer (409 `name_taken`, 404, …).
 */
export interface ScheduleMethods {
  create(body: ScheduleCreate): Promise<Schedule>;
  list(query?: { limit?: number; cursor?: string }): Promise<{ items: Schedule[]; nextCursor: string | null }>;
  get(id: string): Promise<Schedule>;
  update(id: string, patch: SchedulePatch): Promise<Schedule>;
  /** No new runs until resumed. */
  pause(id: string): Promise<Schedule>;
  /** Runs from the next tick after now; ticks missed while paused do not run. */
  resume(id: string): Promise<Schedule>;
  delete(id: string): Promise<void>;
}

/**
 * The typed openapi-fetch client: `client.POST("/v1/jobs", { body })`, `client.GET("/v1/jobs/{id}", …)`, …,
 * and `client.schedules.*`.
 */
export type JoblineClient = Client<paths> & { schedules: ScheduleMethods };

export interface JoblineClientOptions extends Omit<ClientOptions, "baseUrl"> {
  /** e.g. `http://127.0.0.1:8080` (without `/v1`). */
  baseUrl: string;
  /** An API key (`jl_…`); sent as `Authorization: Bearer <key>` on every request. */
  apiKey: string;
  /**
   * Submits (`POST /v1/jobs`, `POST /v1/batches`) carry an `Idempotency-Key` unless the call
   * sets one: generated once per call and reused by its retries, so a resend after a lost
   * answer never makes a second job. Default true.
   */
  idempotencyKeys?: boolean;
  /**
   * How many times a submit is sent again after a 503 (after its Retry-After) or a network
   * error: `unavailable` (nothing changed) always; `outcome_unknown` and network errors only
   * when the resend is idempotent (a job submit with its key). Default 3; 0 turns it off.
   */
  submitRetries?: number;
  /** Told before each submit resend, with its reason (a JoblineApiError or a JoblineConnectionError). */
  onRetry?: (reason: unknown) => void;
}

const SUBMIT_PATH = /\/v1\/(jobs|batches)$/;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * The fetch used for submits: resends the same request (same Idempotency-Key) when that is
 * safe. A batch is resent only when nothing changed: the server does not deduplicate batches.
 */
function retryingFetch(base: (r: Request) => Promise<Response>, retries: number, onRetry: (reason: unknown) => void) {
  return async (request: Request): Promise<Response> => {
    if (request.method !== "POST" || retries === 0 || !SUBMIT_PATH.test(new URL(request.url).pathname)) return base(request);
    const idempotent = new URL(request.url).pathname.endsWith("/v1/jobs") && request.headers.has("idempotency-key");
    for (let attempt = 0; ; attempt++) {
      const last = attempt >= retries;
      let response: Response;
      try {
        response = await base(last ? request : request.clone());
      } catch (e) {
        if (last || !idempotent || request.signal.aborted) throw e;
        onRetry(e);
        await sleep(200 * 2 ** attempt);
        continue;
      }
      if (response.status !== 503 || last) return response;
      const code = ((await response.clone().json().catch(() => null)) as { code?: unknown } | null)?.code;
      if (code !== "unavailable" && !(code === "outcome_unknown" && idempotent)) return response;
      onRetry(new JoblineApiError(503, await response.clone().json().catch(() => null)));
      const after = Number(response.headers.get("retry-after"));
      await sleep(Number.isFinite(after) && after > 0 ? Math.min(after, 30) * 1000 : 1000);
    }
  };
}

/** The server could not be reached (refused, unknown host, reset): names the URL and the cause. */
export class JoblineConnectionError extends TypeError {
  readonly url: string;
  constructor(url: string, cause: unknown) {
    const c = cause as { message?: string; cause?: { code?: string; message?: string } } | undefined;
    const why = c?.cause?.code ?? c?.cause?.message ?? c?.message ?? String(cause);
    super(`cannot reach jobline at ${url}: ${why}`, { cause });
    this.name = "JoblineConnectionError";
    this.url = url;
  }
}

/** fetch's bare "fetch failed" becomes a JoblineConnectionError naming the URL (an abort stays as it is). */
function connectionErrors(base: (r: Request) => Promise<Response>) {
  return async (request: Request): Promise<Response> => {
    try {
      return await base(request);
    } catch (e) {
      if (request.signal.aborted || !(e instanceof TypeError) || e instanceof JoblineConnectionError) throw e;
      throw new JoblineConnectionError(new URL(request.url).origin, e);
    }
  };
}

/**
 * A typed client for the jobline HTTP API. Every call is an openapi-fetch call checked
 * against the generated `paths`; it resolves to `{ data }` on 2xx and `{ error }` (the
 * problem+json body) otherwise, and only throws on network errors or an aborted signal.
 */
export function createJoblineClient(options: JoblineClientOptions): JoblineClient {
  const { apiKey, idempotencyKeys = true, submitRetries = 3, onRetry = () => {}, ...rest } = options;
  if (!apiKey) throw new TypeError("createJoblineClient: apiKey is required");
  const authorization = /^bearer /i.test(apiKey) ? apiKey : `Bearer ${apiKey}`;
  const base = connectionErrors(rest.fetch ?? ((r: Request) => globalThis.fetch(r)));
  const client = createClient<paths>({ ...rest, fetch: retryingFetch(base, submitRetries, (r) => {
      try {
        onRetry(r);
      } catch {
        // A failing callback must not stop the resend.
      }
    }),
  });
  const auth: Middleware = {
    onRequest({ request }) {
      request.headers.set("authorization", authorization);
      if (idempotencyKeys && request.method === "POST" && SUBMIT_PATH.test(new URL(request.url).pathname) && !request.headers.has("idempotency-key"))
        request.headers.set("idempotency-key", crypto.randomUUID());
      return request;
    },
  };
  client.use(auth);
  return Object.assign(client, { schedules: scheduleMethods(client) });
}

function scheduleMethods(client: Client<paths>): ScheduleMethods {
  const path = (id: string) => ({ params: { path: { id } } });
  const update = (id: string, patch: SchedulePatch) => unwrap(client.PATCH("/v1/schedules/{id}", { ...path(id), body: patch }));
  return {
    create: (body) => unwrap(client.POST("/v1/schedules", { body })),
    list: (query = {}) => unwrap(client.GET("/v1/schedules", { params: { query } })),
    get: (id) => unwrap(client.GET("/v1/schedules/{id}", path(id))),
    update,
    pause: (id) => update(id, { paused: true }),
    resume: (id) => update(id, { paused: false }),
    delete: async (id) => {
      await unwrap(client.DELETE("/v1/schedules/{id}", path(id)));
    },
  };
}

/** A non-2xx answer of the API, with its RFC 9457 problem (when the body was one). */
export class JoblineApiError extends Error {
  readonly status: number;
  readonly code: string | undefined;
  readonly problem: Problem | undefined;
  constructor(status: number, problem: unknown) {
    const p = isProblem(problem) ? problem : undefined;
    const hint = status === 401 ? " (check the API key)" : status === 403 ? " (the key lacks the role this call needs)" : "";
    super(`${p ? `${p.status} ${p.code}: ${p.detail}` : `HTTP ${status}`}${hint}`);
    this.name = "JoblineApiError";
    this.status = status;
    this.code = p?.code;
    this.problem = p;
  }
}

export function isProblem(v: unknown): v is Problem {
  return typeof v === "object" && v !== null && typeof (v as Problem).status === "number" && typeof (v as Problem).code === "string";
}

/**
 * Turns an openapi-fetch result into its data, throwing `JoblineApiError` for a non-2xx
 * answer: `const job = await unwrap(client.GET("/v1/jobs/{id}", { params: { path: { id } } }))`.
 */
export async function unwrap<D, E>(
  call: Promise<{ data?: D; error?: E; response: Response }> | { data?: D; error?: E; response: Response },
): Promise<D> {
  const r = await call;
  if (!r.response.ok) throw new JoblineApiError(r.response.status, r.error);
  return r.data as D;
}
