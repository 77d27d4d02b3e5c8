// CLI commands that talk to a running server over HTTP. Plain fetch (no SDK import), so the
// compiled CLI needs no dev dependency and `--help` loads nothing of this.
import { randomUUID } from "node:crypto";

export class UsageError extends Error {}

/** Prints a fetch failure as "cannot reach <url>: <cause>", not undici's bare "fetch failed". */
export class NetworkError extends Error {}

interface Remote {
  baseUrl: string;
  apiKey: string;
}

export function remoteFromEnv(env: NodeJS.ProcessEnv = process.env): Remote {
  const baseUrl = (env.JOBLINE_URL ?? "http://127.0.0.1:8080").replace(/\/+$/, "");
  const apiKey = env.JOBLINE_API_KEY;
  if (!apiKey) throw new UsageError("set JOBLINE_API_KEY (and JOBLINE_URL, default http://127.0.0.1:8080)");
  return { baseUrl, apiKey };
}

function causeOf(e: unknown): string {
  const parts: string[] = [];
  for (let c: unknown = e; c instanceof Error && parts.length < 4; c = c.cause) {
    const code = (c as { code?: string }).code;
    if (c.message !== "fetch failed") parts.push(code && !c.message.includes(code) ? `${code} ${c.message}` : c.message);
  }
  return parts.join(": ") || String(e);
}

export async function call(r: Remote, method: string, path: string, body?: unknown, headers: Record<string, string> = {}) {
  const url = `${r.baseUrl}${path}`;
  let res: Response;
  try {
    res = await fetch(url, {
      method,
      headers: { authorization: `Bearer ${r.apiKey}`, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(30_000),
    });
  } catch (e) {
    throw new NetworkError(`cannot reach ${method} ${url}: ${causeOf(e)} (is the server running? JOBLINE_URL=${r.baseUrl})`);
  }
  const text = await res.text();
  let data: unknown = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {}
  return { status: res.status, ok: res.ok, data, retryAfter: Number(res.headers.get("retry-after")) };
}

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

/** Prints the body on success; returns the exit code (1 for an HTTP error, whose problem goes to stderr). */
export function report(r: { status: number; ok: boolean; data: unknown }): number {
  if (r.ok) {
    print(r.data);
    return 0;
  }
  process.stderr.write(`${r.status}: ${JSON.stringify(r.data)}\n`);
  return 1;
}

export interface SubmitOptions {
  queue: string;
  kind: string;
  payload?: string;
  priority?: string;
  groupKey?: string;
  idempotencyKey?: string;
  dependsOn?: string;
  dependsOnBatches?: string;
  retries: string;
}

const idList = (s: string | undefined) => (s === undefined ? undefined : s.split(",").map((x) => x.trim()).filter(Boolean));

const RETRYABLE = new Set([429, 502, 503, 504]);

/**
 * One logical submit: the Idempotency-Key is chosen once and sent on every attempt, so a
 * resend after an ambiguous failure (connection cut after the commit, 503 outcome_unknown)
 * returns the stored job instead of creating a second one.
 */
export async function submit(o: SubmitOptions): Promise<number> {
  let payload: unknown = {};
  if (o.payload !== undefined) {
    try {
      payload = JSON.parse(o.payload);
    } catch {
      throw new UsageError("--payload must be JSON");
    }
  }
  const retries = Number(o.retries);
  if (!Number.isInteger(retries) || retries < 0) throw new UsageError("--retries must be a whole number ≥ 0");
  const r = remoteFromEnv();
  const body = {
    queue: o.queue,
    kind: o.kind,
    payload,
    ...(o.priority === undefined ? {} : { priority: Number(o.priority) }),
    ...(o.groupKey === undefined ? {} : { groupKey: o.groupKey }),
    ...(o.dependsOn === undefined && o.dependsOnBatches === undefined
      ? {}
      : { dependsOn: { jobs: idList(o.dependsOn), batches: idList(o.dependsOnBatches) } }),
  };
  const headers = { "idempotency-key": o.idempotencyKey ?? randomUUID() };
  for (let attempt = 0; ; attempt++) {
    const last = attempt >= retries;
    try {
      const res = await call(r, "POST", "/v1/jobs", body, headers);
      if (last || !RETRYABLE.has(res.status)) return report(res);
      await sleep(res.retryAfter > 0 ? Math.min(res.retryAfter * 1000, 10_000) : backoff(attempt));
    } catch (e) {
      if (last || !(e instanceof NetworkError)) throw e;
      process.stderr.write(`${e.message}; retrying with the same Idempotency-Key\n`);
      await sleep(backoff(attempt));
    }
  }
}

const backoff = (attempt: number) => Math.min(250 * 2 ** attempt, 4000);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export async function getJob(id: string): Promise<number> {
  return report(await call(remoteFromEnv(), "GET", `/v1/jobs/${encodeURIComponent(id)}`));
}


/** The job filters `jobs list|retry|delete` take (GET /v1/jobs's, and a bulk action's). */
export interface JobFilterOptions {
  queue?: string;
  status?: string;
  kind?: string;
  tag?: string;
  createdAfter?: string;
  createdBefore?: string;
}
const FILTER_KEYS = ["queue", "status", "kind", "tag", "createdAfter", "createdBefore"] as const;
const filterOf = (o: JobFilterOptions) =>
  Object.fromEntries(FILTER_KEYS.filter((k) => o[k] !== undefined).map((k) => [k, o[k]!])) as Record<string, string>;

/** `jobline jobs list [filters]`: one page of GET /v1/jobs, newest first, printed as `{ items, nextCursor }`. */
export async function listJobs(o: JobFilterOptions & { limit?: string; cursor?: string }): Promise<number> {
  const q = new URLSearchParams({ ...filterOf(o), ...(o.limit ? { limit: o.limit } : {}), ...(o.cursor ? { cursor: o.cursor } : {}) });
  return report(await call(remoteFromEnv(), "GET", `/v1/jobs${q.size > 0 ? `?${q}` : ""}`));
}

/**
 * `jobline jobs retry|delete <id>`: the single action; without an id, the filters' jobs by
 * POST /v1/jobs/bulk (at least one filter, so a bare command never acts on every job).
 */
export async function jobAction(action: "retry" | "delete", id: string | undefined, o: JobFilterOptions & { limit?: string }): Promise<number> {
  const filter = filterOf(o);
  if (id !== undefined && Object.keys(filter).length > 0) throw new UsageError(`give a job id or filters, not both`);
  if (id === undefined) {
    if (Object.keys(filter).length === 0) throw new UsageError(`jobs ${action}: give a job id, or filters (--status, --queue, --tag, …)`);
    const body = { action, filter, ...(o.limit ? { limit: Number(o.limit) } : {}) };
    return report(await call(remoteFromEnv(), "POST", "/v1/jobs/bulk", body));
  }
  const path = `/v1/jobs/${encodeURIComponent(id)}`;
  if (action === "retry") return report(await call(remoteFromEnv(), "POST", `${path}/retry`, {}));
  const r = await call(remoteFromEnv(), "DELETE", path);
  return r.ok ? 0 : report(r);
}
