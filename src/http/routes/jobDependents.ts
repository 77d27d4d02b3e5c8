import { z } from "zod";
import type { HttpDeps } from "../../container.js";
import { jobDto } from "../../services/representation.js";
import { requireRole, scope } from "../auth.js";
import { errors, fail } from "../problem.js";
import { IdParams, Uuid } from "../schemas/common.js";
import { JobSchema } from "../schemas/jobs.js";
import { pageLimit, pageSchema } from "../schemas/pages.js";
import type { Api } from "../types.js";

// Workflows (docs/workflows.md): the jobs that named this job in their dependsOn.

export async function jobDependentsRoutes(app: Api, c: HttpDeps) {
  const svc = c.services.jobs;
  app.get(
    "/v1/jobs/:id/dependents",
    {
      onRequest: requireRole(c, "client"),
      schema: {
        tags: ["jobs"],
        operationId: "listJobDependents",
        summary: "List the jobs that depend on this job (by id; cursor: the last id of the previous page)",
        params: IdParams,
        querystring: z.strictObject({ limit: pageLimit(100), cursor: Uuid.optional() }),
        response: { 200: pageSchema(JobSchema, "JobDependents"), ...errors(404) },
      },
    },
    async (req, reply) => {
      const out = await svc.dependents(req.params.id, scope(req), req.query.limit, req.query.cursor ?? null);
      if (!out.ok) return fail(reply, out);
      const items = out.value.slice(0, req.query.limit);
      const nextCursor = out.value.length > req.query.limit ? items[items.length - 1]!.id : null;
      return { items: items.map(jobDto), nextCursor };
    },
  );
}
