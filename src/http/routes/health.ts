import { createHash, timingSafeEqual } from "node:crypto";
import { z } from "zod";
import type { HttpDeps } from "../../container.js";
import { SampleUnavailable } from "../../metrics.js";
import { bearerToken } from "../auth.js";
import { ProblemSchema, problem, sendProblem } from "../problem.js";
import type { Api } from "../types.js";

export async function healthRoutes(app: Api, c: HttpDeps) {
  const Status = z.object({ status: z.enum(["ok", "ready", "not_ready"]) }).meta({ id: "Health" });

  app.get("/healthz", { schema: { operationId: "getHealth", tags: ["ops"], summary: "The process is up", security: [], response: { 200: Status } } }, async () => ({ status: "ok" as const }));

  // Unauthenticated, so it says ready or not and nothing else (a driver's error names the
  // database's host and port); the reason goes to the log.
  app.get(
    "/readyz",
    { schema: { tags: ["ops"], operationId: "getReadiness", summary: "Database reachable and migrations applied", security: [], response: { 200: Status, 503: Status } } },
    async (req, reply) => {
      const r = await c.services.maintenance.readiness();
      if (r.ready) return { status: "ready" as const };
      req.log.warn({ err: r.error }, `not ready: ${r.detail}`);
      return reply.code(503).send({ status: "not_ready" as const });
    },
  );

  // Optional bearer protection; digests compared in constant time so the check leaks no prefix.
  const token = c.config.JOBLINE_METRICS_TOKEN;
  const want = token === undefined ? null : digest(token);
  const authorised = (header: string | undefined) => {
    if (want === null) return true;
    const given = bearerToken(header);
    return given !== null && timingSafeEqual(digest(given), want);
  };

  app.get(
    "/metrics",
    {
      schema: {
        operationId: "getMetrics",
        tags: ["ops"],
        summary: "Prometheus metrics; a bearer token is needed when JOBLINE_METRICS_TOKEN is set",
        description:
          "Queue gauges come from a sample shared by all scrapes (at most one counting query per JOBLINE_METRICS_SAMPLE_MS). " +
          "503 when there is no fresh sample and the database cannot give one.",
        // Not an API key: the metrics token is its own secret, so no API security scheme applies.
        security: [],
        response: {
          200: { description: "Prometheus text exposition format", content: { "text/plain": { schema: z.string() } } },
          401: ProblemSchema,
          503: ProblemSchema,
        },
      },
    },
    async (req, reply) => {
      if (!authorised(req.headers.authorization)) {
        reply.header("www-authenticate", "Bearer");
        return sendProblem(reply, problem("unauthorized", "missing or wrong Authorization: Bearer <metrics token>"));
      }
      try {
        const text = await c.metrics.render();
        return reply.type(c.metrics.registry.contentType).send(text);
      } catch (e) {
        if (!(e instanceof SampleUnavailable)) throw e;
        req.log.warn({ err: e.cause ?? e }, "metrics scrape without queue figures");
        return sendProblem(reply, problem("unavailable", e.message, 503));
      }
    },
  );
}

const digest = (s: string) => createHash("sha256").update(s).digest();
