import { jsonSchemaTransformObject } from "fastify-type-provider-zod";

type Doc = Record<string, unknown> & {
  paths?: Record<string, Record<string, Operation>>;
  components?: Record<string, unknown>;
};
interface Response {
  description?: string;
  headers?: Record<string, unknown>;
  content?: Record<string, unknown>;
}
interface Operation {
  requestBody?: { required?: boolean };
  responses?: Record<string, Response>;
}

/** Routes whose JSON body may be omitted entirely. */
const OPTIONAL_BODY = new Set(["/v1/jobs/{id}/cancel", "/v1/batches/{id}/seal", "/v1/batches/{id}/cancel", "/v1/batches/{id}/retry"]);

/** What a status means where the route's schema says nothing (fastify's own text is "Default Response"). */
const STATUS_TEXT: Record<string, string> = {
  200: "OK",
  201: "Created",
  400: "Invalid request: body, parameters or headers (or a value the database refused)",
  401: "Missing, malformed or unknown API key",
  403: "The API key lacks the role this operation needs",
  404: "Not found, or not visible to this API key's tenant",
  409: "The resource's state does not allow it (the problem's code says why)",
  412: "If-Match does not match the current version",
  413: "Request body too large",
  415: "Request body is not UTF-8 JSON",
  422: "Idempotency-Key reused with a different request",
  500: "Internal error",
  503: "`unavailable` (database unreachable or a transaction conflict): nothing changed, send the same request again after Retry-After. `outcome_unknown` (the database connection was lost after the request reached it): it may have taken effect; send it again only idempotently (same Idempotency-Key, or a lease-fenced call)",
};

const HEADER = {
  ETag: { description: 'The resource\'s version, quoted ("<version>"); send it back in If-Match', schema: { type: "string" } },
  Location: { description: "Path of the created resource", schema: { type: "string" } },
  "Retry-After": { description: "Seconds to wait before sending the same request again", schema: { type: "integer" } },
};
type HeaderName = keyof typeof HEADER;

/** The headers the handlers set, per operation and status (503's Retry-After is on every operation). */
const RESPONSE_HEADERS: Record<string, Record<string, HeaderName[]>> = {
  "post /v1/jobs": { 200: ["ETag"], 201: ["ETag", "Location"] },
  "get /v1/jobs/{id}": { 200: ["ETag"] },
  "post /v1/jobs/{id}/cancel": { 200: ["ETag"] },
  "post /v1/jobs/{id}/claim": { 200: ["ETag"] },
  "post /v1/jobs/{id}/complete": { 200: ["ETag"] },
  "post /v1/jobs/{id}/fail": { 200: ["ETag"] },
  "post /v1/batches": { 201: ["ETag", "Location"] },
  "post /v1/batches/{id}/seal": { 200: ["ETag"] },
  "get /v1/batches/{id}": { 200: ["ETag"] },
  "post /v1/batches/{id}/cancel": { 200: ["ETag"] },
  "post /v1/batches/{id}/retry": { 200: ["ETag"] },
};

/**
 * Brings the generated document in line with what the server does: error
 * responses are application/problem+json, some POST bodies are optional, every
 * response says what it means, and the headers clients act on are declared.
 */
export function polishOpenApi(input: Parameters<typeof jsonSchemaTransformObject>[0]) {
  const doc = jsonSchemaTransformObject(input) as Doc;
  for (const [path, ops] of Object.entries(doc.paths ?? {})) {
    for (const [method, op] of Object.entries(ops)) {
      if (OPTIONAL_BODY.has(path) && op.requestBody) op.requestBody.required = false;
      for (const [status, res] of Object.entries(op.responses ?? {})) {
        const json = res.content?.["application/json"];
        if (Number(status) >= 400 && json) res.content = { "application/problem+json": json };
        if (res.description === "Default Response" && STATUS_TEXT[status]) res.description = STATUS_TEXT[status];
        const names = status === "503" ? (["Retry-After"] as const) : (RESPONSE_HEADERS[`${method} ${path}`]?.[status] ?? []);
        if (names.length > 0) res.headers = Object.fromEntries(names.map((n) => [n, { $ref: `#/components/headers/${n}` }]));
      }
    }
  }
  // Declared once, referred to by every response that carries them.
  doc.components = { ...doc.components, headers: HEADER };
  return doc as ReturnType<typeof jsonSchemaTransformObject>;
}
