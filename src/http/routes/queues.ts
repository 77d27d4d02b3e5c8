import { z } from "zod";
import type { Container } from "../../container.js";
import { requireRole, scope } from "../auth.js";
import { errors } from "../problem.js";
import { JobCounts } from "../schemas/jobs.js";
import type { Api } from "../types.js";

export async function queueRoutes(app: Api, c: Container) {
  app.get(
    "/v1/queues",
    {
      onRequest: requireRole(c, "client", "worker"),
      schema: {
        tags: ["queues"],
        operationId: "listQueues",
        summary: "Per queue of each tenant: job counts by status and the age of the oldest claimable job",
        response: {
          200: z
            .object({
              items: z.array(
                z.object({
                  queue: z.string(),
                  tenant: z.string().describe("A platform key sees each tenant's queue of the same name as its own item"),
                  counts: JobCounts,
                  oldestQueuedAgeSeconds: z.number().nullable(),
                }),
              ),
            })
            .meta({ id: "QueueList" }),
          ...errors(),
        },
      },
    },
    async (req) => ({ items: await c.services.queues.overview(scope(req)) }),
  );
}
