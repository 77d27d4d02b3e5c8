import { z } from "zod";
import type { Container } from "../../container.js";
import { requireRole, scope } from "../auth.js";
import { errors, fail } from "../problem.js";
import { EmptyBody, IdParams, Uuid } from "../schemas/common.js";
import { JobFilterFields, JobSchema } from "../schemas/jobs.js";
import type { Api } from "../types.js";
import { answerJob } from "./jobs.js";

// The operator's actions on jobs: retry, delete, bulk (DESIGN.md "Operator control and visibility").

const BulkBody = z
  .strictObject({
    action: z.enum(["cancel", "retry", "delete"]),
    ids: z.array(Uuid).min(1).max(1000).optional(),
    filter: z.strictObject(JobFilterFields).optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
  })
  .refine((b) => (b.ids === undefined) !== (b.filter === undefined), "give either ids or filter")
  .meta({ id: "JobBulk" });

export async function jobActionRoutes(app: Api, c: Container) {
  const svc = c.services.jobs;
  const client = requireRole(c, "client");
  const tags = ["jobs"];

  app.post(
    "/v1/jobs/:id/retry",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "retryJob", summary: "Retry a failed or cancelled job (→ queued, attempts reset)",
        params: IdParams,
        body: EmptyBody,
        response: { 200: JobSchema, ...errors(404, 409) },
      },
    },
    async (req, reply) => answerJob(reply, await svc.retry(req.params.id, scope(req))),
  );

  app.delete(
    "/v1/jobs/:id",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "deleteJob", summary: "Delete a finished job",
        params: IdParams,
        response: { 204: z.null().describe("deleted"), ...errors(404, 409) },
      },
    },
    async (req, reply) => {
      const out = await svc.remove(req.params.id, scope(req));
      if (!out.ok) return fail(reply, out);
      return reply.code(204).send(null);
    },
  );

  app.post(
    "/v1/jobs/bulk",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "bulkJobs", summary: "Cancel, retry or delete many jobs (by ids or a filter); race losers are skipped",
        body: BulkBody,
        response: {
          200: z
            .object({ matched: z.number().int(), changed: z.number().int(), skipped: z.number().int() })
            .meta({ id: "JobBulkResult" }),
          ...errors(),
        },
      },
    },
    async (req) => {
      const { action, ids, filter, limit } = req.body;
      return svc.bulk(scope(req), { action, ids, limit, ...filter });
    },
  );
}
