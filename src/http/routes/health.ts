import { z } from "zod";
import type { Container } from "../../container.js";
import { migrationsApplied } from "../../db/migrate.js";
import type { Api } from "../types.js";

export async function healthRoutes(app: Api, c: Container) {
  const Status = z.object({ status: z.string(), detail: z.string().optional() }).meta({ id: "Health" });

  app.get("/healthz", { schema: { operationId: "getHealth", tags: ["ops"], summary: "The process is up", security: [], response: { 200: Status } } }, async () => ({ status: "ok" }));

  app.get(
    "/readyz",
    { schema: { tags: ["ops"], operationId: "getReadiness", summary: "Database reachable and migrations applied", security: [], response: { 200: Status, 503: Status } } },
    async (_req, reply) => {
      try {
        const ok = await Promise.race([
          migrationsApplied(c.sql),
          new Promise<boolean>((_, rej) => setTimeout(() => rej(new Error("database timeout")), 2000).unref()),
        ]);
        if (!ok) return reply.code(503).send({ status: "not_ready", detail: "migrations not applied" });
        return { status: "ready" };
      } catch (e) {
        return reply.code(503).send({ status: "not_ready", detail: (e as Error).message });
      }
    },
  );

  app.get("/metrics", { schema: { operationId: "getMetrics", tags: ["ops"], summary: "Prometheus metrics", security: [], hide: false, produces: ["text/plain"] } }, async (_req, reply) => {
    reply.type(c.metrics.registry.contentType);
    return c.metrics.registry.metrics();
  });
}
