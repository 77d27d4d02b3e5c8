import { z } from "zod";
import type { HttpDeps } from "../../container.js";
import { requireRole, scope } from "../auth.js";
import { errors, fail } from "../problem.js";
import { EmptyBody, IdParams } from "../schemas/common.js";
import { BulkBody, bulkResult } from "../schemas/jobActions.js";
import { JobSchema } from "../schemas/jobs.js";
import type { Api } from "../types.js";
import { answerJob } from "./jobs.js";

// The operator's actions on jobs: retry, delete, bulk (DESIGN.md "Operator control and visibility").

export async function jobActionRoutes(app: Api, c: HttpDeps) {
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
          200: bulkResult(),
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
