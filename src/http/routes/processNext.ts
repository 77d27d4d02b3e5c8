import { z } from "zod";
import type { Container } from "../../container.js";
import { claimedJobDto } from "../../services/representation.js";
import { requireRole, scope } from "../auth.js";
import { errors } from "../problem.js";
import { ClaimedJobSchema, LeaseSeconds, Name, WorkerId } from "../schemas.js";
import type { Api } from "../types.js";

export async function processNextRoutes(app: Api, c: Container) {
  app.post(
    "/v1/process-next",
    {
      preHandler: requireRole(c, "worker"),
      schema: {
        tags: ["workers"],
        summary: "Lease up to `max` claimable jobs; long-polls up to `waitMs` when none is ready",
        body: z.strictObject({
          queues: z.array(Name).min(1).max(50),
          kinds: z.array(Name).max(100).optional(),
          workerId: WorkerId,
          max: z.number().int().min(1).max(100).default(1),
          leaseSeconds: LeaseSeconds.default(60),
          waitMs: z.number().int().min(0).max(30_000).default(0),
        }),
        response: { 200: z.object({ jobs: z.array(ClaimedJobSchema) }).meta({ id: "ProcessNextResult" }), ...errors() },
      },
    },
    async (req, reply) => {
      // A client that disconnects ends its long poll, so no job is leased to nobody. The
      // response's close (not the request's, which Node emits once the body is read) is the
      // connection going away before we answered.
      const abort = new AbortController();
      const onClose = () => {
        if (!reply.raw.writableFinished) abort.abort();
      };
      reply.raw.once("close", onClose);
      try {
        const rows = await c.services.jobs.claimNext({ ...req.body, scope: scope(req), signal: abort.signal });
        return { jobs: rows.map(claimedJobDto) };
      } finally {
        reply.raw.off("close", onClose);
      }
    },
  );
}
