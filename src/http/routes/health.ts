import { z } from "zod";
import type { Container } from "../../container.js";
import type { Api } from "../types.js";

export async function healthRoutes(app: Api, c: Container) {
  const Status = z.object({ status: z.string(), detail: z.string().optional() }).meta({ id: "Health" });

  app.get("/healthz", { schema: { tags: ["ops"], security: [], response: { 200: Status } } }, async () => ({ status: "ok" }));

  app.get(
    "/readyz",
    { schema: { tags: ["ops"], summary: "Database reachable and migrations applied", security: [], response: { 200: Status, 503: Status } } },
    async (_req, reply) => {
      const r = await c.services.maintenance.readiness();
      return r.ready ? { status: "ready" } : reply.code(503).send({ status: "not_ready", detail: r.detail });
    },
  );

  app.get("/metrics", { schema: { tags: ["ops"], security: [], hide: false, produces: ["text/plain"] } }, async (_req, reply) => {
    reply.type(c.metrics.registry.contentType);
    return c.metrics.registry.metrics();
  });
}
