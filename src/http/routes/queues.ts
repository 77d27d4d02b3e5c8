import { z } from "zod";
import type { Container } from "../../container.js";
import { JOB_STATUSES } from "../../domain/jobs.js";
import { requireRole, scope } from "../auth.js";
import { errors } from "../problem.js";
import type { Api } from "../types.js";

const Counts = z.object(Object.fromEntries(JOB_STATUSES.map((s) => [s, z.number().int()])) as Record<(typeof JOB_STATUSES)[number], z.ZodNumber>);

export async function queueRoutes(app: Api, c: Container) {
  app.get(
    "/v1/queues",
    {
      onRequest: requireRole(c, "client", "worker"),
      schema: {
        tags: ["queues"],
        operationId: "listQueues",
        summary: "Per queue: job counts by status and the age of the oldest claimable job",
        response: {
          200: z
            .object({
              items: z.array(
                z.object({ queue: z.string(), counts: Counts, oldestQueuedAgeSeconds: z.number().nullable() }),
              ),
            })
            .meta({ id: "QueueList" }),
          ...errors(),
        },
      },
    },
    async (req) => {
      const tenant = scope(req);
      const [rows, oldest] = await Promise.all([c.repos.jobs.countByQueue(tenant), c.repos.jobs.oldestClaimableByQueue(tenant)]);
      const age = new Map(oldest.map((o) => [o.queue, Math.max(0, o.age)]));
      const byQueue = new Map<string, { queue: string; counts: Record<string, number>; oldestQueuedAgeSeconds: number | null }>();
      for (const r of rows) {
        const q = byQueue.get(r.queue) ?? {
          queue: r.queue,
          counts: Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])),
          oldestQueuedAgeSeconds: age.get(r.queue) ?? null,
        };
        q.counts[r.status] = r.n;
        byQueue.set(r.queue, q);
      }
      return { items: [...byQueue.values()] as never };
    },
  );
}
