import { z } from "zod";
import type { Container } from "../../container.js";
import { migrationsApplied } from "../../db/migrate.js";
import type { Api } from "../types.js";

export async function healthRoutes(app: Api, c: Container) {
  const Status = z.object({ status: z.enum(["ok", "ready", "not_ready"]) }).meta({ id: "Health" });

  app.get("/healthz", { schema: { tags: ["ops"], security: [], response: { 200: Status } } }, async () => ({ status: "ok" as const }));

  // Unauthenticated, so it says ready or not and nothing else (a driver's error names the
  // database's host and port); the reason goes to the log.
  app.get(
    "/readyz",
    { schema: { tags: ["ops"], summary: "Database reachable and migrations applied", security: [], response: { 200: Status, 503: Status } } },
    async (req, reply) => {
      try {
        const ok = await Promise.race([
          migrationsApplied(c.sql),
          new Promise<boolean>((_, rej) => setTimeout(() => rej(new Error("database timeout")), 2000).unref()),
        ]);
        if (ok) return { status: "ready" as const };
        req.log.warn("not ready: migrations not applied");
      } catch (e) {
        req.log.warn({ err: e }, "not ready: database unreachable");
      }
      return reply.code(503).send({ status: "not_ready" as const });
    },
  );

  app.get("/metrics", { schema: { tags: ["ops"], security: [], hide: false, produces: ["text/plain"] } }, async (_req, reply) => {
    reply.type(c.metrics.registry.contentType);
    return c.metrics.registry.metrics();
  });
}
