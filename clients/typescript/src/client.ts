import createClient, { type Client, type ClientOptions, type Middleware } from "openapi-fetch";
import type { components, paths } from "./schema.gen.js";

export type { components, paths } from "./schema.gen.js";

type Schemas = components["schemas"];
export type Job = Schemas["Job"];
export type ClaimedJob = Schemas["ClaimedJob"];
export type Batch = Schemas["Batch"];
export type Problem = Schemas["Problem"];
export type JobStatus = Job["status"];
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
}

/**
 * A typed client for the jobline HTTP API. Every call is an openapi-fetch call checked
 * against the generated `paths`; it resolves to `{ data }` on 2xx and `{ error }` (the
 * problem+json body) otherwise, and only throws on network errors or an aborted signal.
 */
export function createJoblineClient(options: JoblineClientOptions): JoblineClient {
  const { apiKey, ...rest } = options;
  if (!apiKey) throw new TypeError("createJoblineClient: apiKey is required");
  const authorization = /^bearer /i.test(apiKey) ? apiKey : `Bearer ${apiKey}`;
  const client = createClient<paths>(rest);
  const auth: Middleware = {
    onRequest({ request }) {
      request.headers.set("authorization", authorization);
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
    super(p ? `${p.status} ${p.code}: ${p.detail}` : `HTTP ${status}`);
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
