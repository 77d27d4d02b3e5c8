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
      preHandler: requireRole(c, "client", "worker"),
      schema: {
        tags: ["queues"],
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
      const rows = await c.sql<{ queue: string; status: string; n: number; oldest: number | null }[]>`
        SELECT queue, status::text AS status, count(*)::int AS n,
               extract(epoch FROM now() - min(run_at) FILTER (WHERE status = 'queued' AND run_at <= now()))::float8 AS oldest
        FROM jobs ${tenant === null ? c.sql`` : c.sql`WHERE tenant = ${tenant}`}
        GROUP BY queue, status ORDER BY queue`;
      const byQueue = new Map<string, { queue: string; counts: Record<string, number>; oldestQueuedAgeSeconds: number | null }>();
      for (const r of rows) {
        const q = byQueue.get(r.queue) ?? {
          queue: r.queue,
          counts: Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])),
          oldestQueuedAgeSeconds: null,
        };
        q.counts[r.status] = r.n;
        if (r.oldest !== null) q.oldestQueuedAgeSeconds = Math.max(0, r.oldest);
        byQueue.set(r.queue, q);
      }
      return { items: [...byQueue.values()] as never };
    },
  );
}
