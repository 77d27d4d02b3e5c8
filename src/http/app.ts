import { isUtf8 } from "node:buffer";
import { randomUUID } from "node:crypto";
import fastifySwagger from "@fastify/swagger";
import fastifySwaggerUi from "@fastify/swagger-ui";
import Fastify, { type FastifyBaseLogger, type FastifyError, type FastifyReply, type FastifyRequest, LogController } from "fastify";
import {
  hasZodFastifySchemaValidationErrors,
  jsonSchemaTransform,
  validatorCompiler,
  type ZodTypeProvider,
} from "fastify-type-provider-zod";
import type { HttpDeps } from "../container.js";
import { polishOpenApi } from "./openapiDoc.js";
import { clientErrorProblem, problem, rawProblemResponse, sendProblem } from "./problem.js";
import type { Api } from "./types.js";
import { apiKeyRoutes } from "./routes/apiKeys.js";
import { batchRoutes } from "./routes/batches.js";
import { healthRoutes } from "./routes/health.js";
import { jobActionRoutes } from "./routes/jobActions.js";
import { jobDependentsRoutes } from "./routes/jobDependents.js";
import { jobRoutes } from "./routes/jobs.js";
import { processNextRoutes } from "./routes/processNext.js";
import { queueRoutes } from "./routes/queues.js";
import { scheduleRoutes } from "./routes/schedules.js";
import { statsRoutes } from "./routes/stats.js";
import { dashboardRoutes } from "./routes/dashboard.js";
import { tenantRoutes } from "./routes/tenants.js";
import { isConflictVictim, isDataError, isDbUnavailable, isOutcomeUnknown } from "../db/errors.js";

export const BODY_LIMIT = 1024 * 1024;
/** Longer than the longest name a path carries (tenant names are at most 128), so no path answers 414. */
export const MAX_PARAM_LENGTH = 256;

const OUTCOME_UNKNOWN =
  "the database connection was lost after the request reached it: it may or may not have taken effect. " +
  "Send it again with the same Idempotency-Key (a submit), or as it was (complete, fail and heartbeat are fenced by the lease token); read the job to check otherwise";

/** Routes whose requests are not logged: probes and scrapes would drown the rest. */
const QUIET_ROUTES = new Set(["/healthz", "/readyz", "/metrics"]);

/** The fastify plugin tree. Only the entry point listens, reads the environment and handles signals. */
export async function buildApp(c: HttpDeps): Promise<Api> {
  const app = createServer(c);
  addJsonParser(app);
  addRequestHooks(app, c);
  app.setErrorHandler(sendError);
  addMethodNotAllowed(app);
  await registerDocs(app);
  await app.register(async (api) => {
    await healthRoutes(api, c);
    await jobRoutes(api, c);
    await jobActionRoutes(api, c);
    await jobDependentsRoutes(api, c);
    await processNextRoutes(api, c);
    await queueRoutes(api, c);
    await batchRoutes(api, c);
    await scheduleRoutes(api, c);
    await statsRoutes(api, c);
    await apiKeyRoutes(api, c);
    await tenantRoutes(api, c);
    await dashboardRoutes(api, c);
  });
  return app;
}

/** The server with its deadlines, limits, logger and zod compilers; no routes yet. */
function createServer(c: HttpDeps): Api {
  const cfg = c.config;
  const app = Fastify({
    // Deadlines for receiving a request (headers, then the whole body) and for idle sockets;
    // the answer itself has none, so a long poll waits as long as it asked (see README).
    requestTimeout: cfg.JOBLINE_REQUEST_TIMEOUT_MS,
    keepAliveTimeout: cfg.JOBLINE_KEEP_ALIVE_TIMEOUT_MS,
    connectionTimeout: cfg.JOBLINE_IDLE_TIMEOUT_MS,
    http: {
      headersTimeout: cfg.JOBLINE_HEADERS_TIMEOUT_MS,
      requestTimeout: cfg.JOBLINE_REQUEST_TIMEOUT_MS,
      // Node checks those deadlines every 30 s by default, which lets a slow client overstay by as much.
      connectionsCheckingInterval: Math.max(50, Math.min(1000, Math.floor(cfg.JOBLINE_HEADERS_TIMEOUT_MS / 4))),
    },
    loggerInstance: c.logger.child({ component: "http" }) as FastifyBaseLogger,
    // fastify's own two lines per request are replaced by one (onResponse below).
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT,
    requestIdHeader: "x-request-id",
    genReqId: () => randomUUID(),
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: MAX_PARAM_LENGTH },
    ajv: { customOptions: { removeAdditional: false } },
    // A malformed URL (e.g. %ED%A0%80) fails before routing: answer it as problem+json too.
    frameworkErrors: (error, _req, reply) =>
      sendProblem(reply, problem("invalid_request", error.message, error.statusCode && error.statusCode < 500 ? error.statusCode : 400)),
    // Node's HTTP parser refuses some requests (bad header bytes, oversized headers) before fastify
    // sees them; fastify's default answer is plain JSON, ours is problem+json like every other error.
    clientErrorHandler: (err, socket) => {
      const code = (err as { code?: string }).code;
      if (code === "ECONNRESET" || socket.destroyed) return;
      if (!socket.writable) return void socket.destroy(err);
      socket.end(rawProblemResponse(clientErrorProblem(code)));
    },
  }).withTypeProvider<ZodTypeProvider>();
  // Connections past the cap are closed as they arrive (no HTTP answer is possible before
  // accepting one), so a client holding thousands of sockets cannot starve the others.
  app.server.maxConnections = cfg.JOBLINE_MAX_CONNECTIONS;

  app.setValidatorCompiler(validatorCompiler);
  // Responses are typed against their zod schemas at compile time (and the schemas document
  // them); re-validating every response at run time costs the hot path for nothing.
  app.setSerializerCompiler(() => (data) => JSON.stringify(data));
  return app;
}

/** An empty body on a JSON POST (e.g. cancel, seal) is "no body", not a parse error. */
function addJsonParser(app: Api) {
  app.removeContentTypeParser("application/json");
  app.addContentTypeParser("application/json", { parseAs: "buffer", bodyLimit: BODY_LIMIT }, (req, body, done) => {
    // JSON is UTF-8 (RFC 8259); a body labelled otherwise would be decoded as garbage.
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(req.headers["content-type"] ?? "")?.[1];
    if (charset !== undefined && !/^utf-?8$/i.test(charset)) {
      const e = new Error(`unsupported charset ${charset}; send UTF-8`) as FastifyError;
      e.statusCode = 415;
      return done(e, undefined);
    }
    // Decoding would turn invalid bytes into U+FFFD and store them as if the client had sent that.
    if (typeof body !== "string" && !isUtf8(body)) {
      const e = new Error("request body is not valid UTF-8") as FastifyError;
      e.statusCode = 400;
      return done(e, undefined);
    }
    const text = typeof body === "string" ? body : body.toString("utf8");
    if (text.trim() === "") return done(null, undefined);
    try {
      done(null, JSON.parse(text));
    } catch {
      const e = new Error("request body is not valid JSON") as FastifyError;
      e.statusCode = 400;
      e.code = "FST_ERR_CTP_INVALID_JSON_BODY";
      done(e, undefined);
    }
  });
}

/** x-request-id on every answer; one metric sample and one log line per request. */
function addRequestHooks(app: Api, c: HttpDeps) {
  // Callback hooks, not async ones: each async hook cost ~5 µs of the API's CPU per request
  // (a fastify echo route under 16 clients: 29.5-30.0 against 25.0-25.3 µs).
  app.addHook("onSend", (req, reply, payload, done) => {
    reply.header("x-request-id", req.id);
    done(null, payload);
  });
  app.addHook("onResponse", (req, reply, done) => {
    const route = req.routeOptions.url ?? "unmatched";
    c.metrics.httpDuration.observe(
      { method: req.method, route, status: String(reply.statusCode) },
      reply.elapsedTime / 1000,
    );
    // One line per request at info (reqId comes from the request's child logger).
    if (!QUIET_ROUTES.has(route) && c.logger.isLevelEnabled("info"))
      req.log.info(
        { method: req.method, route, status: reply.statusCode, durationMs: Math.round(reply.elapsedTime * 100) / 100 },
        "request",
      );
    done();
  });
}

/** Every error as problem+json: validation, framework statuses, database failures by what the client can do next. */
function sendError(error: FastifyError, req: FastifyRequest, reply: FastifyReply) {
  if (hasZodFastifySchemaValidationErrors(error)) {
    const issues = error.validation.map((v) => ({
      path: `${error.validationContext ?? ""}${v.instancePath || ""}`,
      message: v.message ?? "invalid",
    }));
    return sendProblem(
      reply,
      problem("invalid_request", issues.map((i) => `${i.path}: ${i.message}`).join("; "), 400, { errors: issues }),
    );
  }
  const status = error.statusCode ?? 500;
  if (status === 413)
    return sendProblem(reply, problem("payload_too_large", `request body exceeds ${req.routeOptions.bodyLimit ?? BODY_LIMIT} bytes`, 413));
  if (status === 415) return sendProblem(reply, problem("unsupported_media_type", error.message, 415));
  if (status >= 400 && status < 500) return sendProblem(reply, problem("invalid_request", error.message, status));
  if (isConflictVictim(error))
    return sendProblem(reply, problem("unavailable", "transaction conflict; retry", 503));
  // PostgreSQL refused a value of this request (only this one: shared submits and completes
  // isolate it). Logged as an error all the same: input is validated before it reaches SQL,
  // so this is either a rule the operator added or a check jobline is missing.
  if (isDataError(error)) {
    req.log.error({ err: error }, "the database refused a value of this request");
    return sendProblem(reply, problem("invalid", "the database refused a value in this request", 400));
  }
  // A read changes nothing whatever happened to its connection; a write may have committed.
  if (isOutcomeUnknown(error) && req.method !== "GET" && req.method !== "HEAD") {
    req.log.warn({ err: error }, "database connection lost after the statement was sent");
    return sendProblem(reply, problem("outcome_unknown", OUTCOME_UNKNOWN, 503));
  }
  if (isDbUnavailable(error) || isOutcomeUnknown(error)) {
    // Expected while PostgreSQL restarts; logged so that a wrong classification leaves a trace.
    req.log.warn({ err: error }, "database unavailable");
    return sendProblem(reply, problem("unavailable", "database unavailable; nothing changed, send the request again", 503));
  }
  req.log.error({ err: error }, "unhandled error");
  return sendProblem(reply, problem("internal", "internal error", 500));
}

/** A known path asked with another method is 405 with the methods it has (RFC 9110), not 404. Add before the routes. */
function addMethodNotAllowed(app: Api) {
  const known: Array<{ pattern: RegExp; method: string }> = [];
  app.addHook("onRoute", (r) => {
    for (const method of [r.method].flat()) known.push({ pattern: pathPattern(r.url), method });
  });
  app.setNotFoundHandler((req, reply) => {
    const path = req.url.split("?")[0] ?? "/";
    const allow = [...new Set(known.filter((k) => k.pattern.test(path)).map((k) => k.method))];
    if (allow.length > 0)
      return sendProblem(reply.header("allow", allow.join(", ")), problem("method_not_allowed", `${req.method} is not allowed on ${path}`, 405));
    return sendProblem(reply, problem("route_not_found", `no route ${req.method} ${path}`, 404));
  });
}

/** The OpenAPI document (built from the routes' zod schemas), /docs and /openapi.json. Register before the routes. */
async function registerDocs(app: Api) {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.1.0",
      info: {
        title: "jobline",
        version: "1.0.0",
        description:
          "HTTP job orchestration on PostgreSQL. Every state change is one atomic statement; errors are application/problem+json.",
      },
      components: { securitySchemes: { bearer: { type: "http", scheme: "bearer" } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
    transformObject: polishOpenApi,
  });
  await app.register(fastifySwaggerUi, { routePrefix: "/docs" });
  app.get("/openapi.json", { schema: { hide: true } }, async () => app.swagger());
}

/** A route's URL (`/v1/jobs/:id/cancel`, `/docs/*`) as a matcher of concrete paths, trailing slash optional. */
function pathPattern(url: string): RegExp {
  const body = url
    .replace(/\/$/, "")
    .split("/")
    .map((seg) => (seg === "*" ? ".*" : seg.startsWith(":") ? "[^/]+" : seg.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")))
    .join("/");
  return new RegExp(`^${body}/?$`);
}
