import { z } from "zod";
import type { HttpDeps } from "../../container.js";
import { requireRole, scope } from "../auth.js";
import { errors } from "../problem.js";
import type { Api } from "../types.js";

export async function statsRoutes(app: Api, c: HttpDeps) {
  app.get(
    "/v1/stats/throughput",
    {
      onRequest: requireRole(c, "client"),
      schema: {
        tags: ["stats"],
        operationId: "getThroughput",
        summary: "Jobs finished per minute over the last `minutes` minutes, oldest first, every minute listed",
        querystring: z.strictObject({ minutes: z.coerce.number().int().min(1).max(1440).default(60) }),
        response: {
          200: z
            .object({
              items: z.array(
                z.object({
                  minute: z.string(),
                  succeeded: z.number().int(),
                  failed: z.number().int(),
                  cancelled: z.number().int(),
                }),
              ),
            })
            .meta({ id: "Throughput" }),
          ...errors(),
        },
      },
    },
    async (req) => {
      const rows = await c.services.batches.throughput(scope(req), req.query.minutes);
      return { items: rows.map((r) => ({ ...r, minute: r.minute.toISOString() })) };
    },
  );
}
