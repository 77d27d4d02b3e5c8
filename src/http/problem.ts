import type { FastifyReply } from "fastify";
import { z } from "zod";
import type { ErrorCode } from "../domain/outcomes.js";

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    code: z.string(),
    errors: z.array(z.object({ path: z.string(), message: z.string() })).optional(),
  })
  .meta({ id: "Problem", description: "RFC 9457 problem details with a stable `code`" });
export type Problem = z.infer<typeof ProblemSchema>;

const STATUS: Record<ErrorCode | string, number> = {
  invalid: 400,
  invalid_request: 400,
  webhook_url_not_allowed: 400,
  unauthorized: 401,
  forbidden: 403,
  not_found: 404,
  route_not_found: 404,
  method_not_allowed: 405,
  not_acceptable: 406,
  not_queued: 409,
  not_claimable: 409,
  queue_paused: 409,
  concurrency_limited: 409,
  rate_limited: 409,
  terminal: 409,
  not_retryable: 409,
  not_finished: 409,
  lease_lost: 409,
  timeout: 409,
  not_running: 409,
  batch_sealed: 409,
  batch_cancelled: 409,
  batch_not_retryable: 409,
  batch_not_cancellable: 409,
  name_taken: 409,
  version_mismatch: 412,
  payload_too_large: 413,
  unsupported_media_type: 415,
  request_timeout: 408,
  headers_too_large: 431,
  idempotency_mismatch: 422,
  unavailable: 503,
  outcome_unknown: 503,
  internal: 500,
};

const TITLES: Record<number, string> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  408: "Request Timeout",
  409: "Conflict",
  412: "Precondition Failed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  431: "Request Header Fields Too Large",
  422: "Unprocessable Content",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

export const statusOf = (code: string) => STATUS[code] ?? 400;

export function problem(code: string, detail?: string, status = statusOf(code), extra: Partial<Problem> = {}): Problem {
  return {
    type: `urn:jobline:problem:${code}`,
    title: TITLES[status] ?? "Error",
    status,
    detail: detail ?? code.replaceAll("_", " "),
    code,
    ...extra,
  };
}

export function sendProblem(reply: FastifyReply, p: Problem) {
  // 503 `unavailable` means "changed nothing, send it again", `outcome_unknown` "send it again
  // idempotently": either way, say when (RFC 9110 Retry-After).
  if (p.status === 503) reply.header("retry-after", "1");
  return reply.code(p.status).type("application/problem+json").send(p);
}

/** Maps a service's typed failure to its HTTP problem. */
export function fail(reply: FastifyReply, e: { error: string; detail?: string | undefined }) {
  return sendProblem(reply, problem(e.error, e.detail));
}

/**
 * One item of a many-item request, answered on its own: 200 (with `body`'s rendering of the
 * value, when given) or the item's problem with that problem's status.
 */
export function itemAnswer<T, B>(id: string, outcome: { ok: true; value: T } | { ok: false; error: string; detail?: string | undefined }, body?: (v: T) => B) {
  if (outcome.ok) return { id, status: 200, ...(body ? { job: body(outcome.value) } : {}) };
  const p = problem(outcome.error, outcome.detail);
  return { id, status: p.status, problem: p };
}

/** Error responses for a route's schema, so every one appears in the OpenAPI document. */
export function errors(...codes: number[]) {
  // 503: `unavailable` (database unreachable, deadlock victim: nothing changed) or
  // `outcome_unknown` (the connection died after the statement was sent).
  return Object.fromEntries([400, 401, 403, 503, ...codes].map((c) => [c, ProblemSchema]));
}

/** The problem for a request Node's HTTP parser refused, by its error code. */
export function clientErrorProblem(code: string | undefined): Problem {
  if (code === "HPE_HEADER_OVERFLOW") return problem("headers_too_large", "request headers are too large");
  if (code === "ERR_HTTP_REQUEST_TIMEOUT") return problem("request_timeout", "the request took too long to arrive");
  return problem("invalid_request", "malformed HTTP request");
}

/** A whole HTTP/1.1 response carrying `p`, for a socket that never became a request. */
export function rawProblemResponse(p: Problem): string {
  const body = JSON.stringify(p);
  return (
    `HTTP/1.1 ${p.status} ${p.title}\r\nContent-Type: application/problem+json; charset=utf-8\r\n` +
    `Content-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`
  );
}
