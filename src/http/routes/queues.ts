import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Container } from "../../container.js";
import { JOB_STATUSES } from "../../domain/jobs.js";
import { WAIT_REASONS } from "../../repositories/queues.js";
import { PLATFORM_TENANT } from "../../services/auth.js";
import { requireRole, scope } from "../auth.js";
import { errors, fail, problem, sendProblem } from "../problem.js";
import { Name, TenantName } from "../schemas.js";
import type { Api } from "../types.js";

const Counts = z.object(Object.fromEntries(JOB_STATUSES.map((s) => [s, z.number().int()])) as Record<(typeof JOB_STATUSES)[number], z.ZodNumber>);
const WaitingBecause = z.array(z.enum(WAIT_REASONS)).describe("Why queued jobs wait now (a snapshot; several may hold at once).");
const Limit = z.number().int().min(1).max(1_000_000);

const SettingsBody = z
  .strictObject({
    paused: z.boolean().optional().describe("Default false."),
    concurrency: Limit.nullable().optional().describe("At most this many of the queue's jobs running at once."),
    groupConcurrency: Limit.nullable().optional().describe("At most this many running per groupKey; 1 = serial per key, in order."),
    rateLimit: z
      .strictObject({ limit: Limit, periodSeconds: z.number().int().min(1).max(86_400) })
      .nullable()
      .optional()
      .describe("At most `limit` jobs start in any window of `periodSeconds`."),
    defaultTimeoutSeconds: z.number().int().min(1).max(86_400).nullable().optional(),
  })
  .meta({ id: "QueueSettingsPut", description: "Replaces the whole settings object: an absent field means no limit (and not paused)." });
const Settings = z
  .object({
    paused: z.boolean(),
    concurrency: z.number().int().nullable(),
    groupConcurrency: z.number().int().nullable(),
    rateLimit: z.object({ limit: z.number().int(), periodSeconds: z.number().int() }).nullable(),
    defaultTimeoutSeconds: z.number().int().nullable(),
  })
  .meta({ id: "QueueSettings" });
const QueueView = z
  .object({ queue: z.string(), tenant: z.string(), settings: Settings, counts: Counts, waitingBecause: WaitingBecause })
  .meta({ id: "Queue" });
const params = z.strictObject({ queue: Name });
const querystring = z.strictObject({ tenant: TenantName.optional().describe("Required with a platform key (tenant `*`).") });

/** The tenant whose queue the request names: a platform key must say which; another tenant's is 404. */
function tenantOf(req: FastifyRequest, reply: FastifyReply): string | null {
  const own = req.principal.tenant;
  const named = (req.query as { tenant?: string | undefined }).tenant;
  if (own === PLATFORM_TENANT) {
    if (named === undefined) sendProblem(reply, problem("invalid", "a platform key must name the queue's tenant: ?tenant="));
    return named ?? null;
  }
  if (named !== undefined && named !== own) {
    sendProblem(reply, problem("not_found", "unknown queue"));
    return null;
  }
  return own;
}

export async function queueRoutes(app: Api, c: Container) {
  const admin = requireRole(c, "admin");
  const svc = c.services.queues;

  app.get(
    "/v1/queues",
    {
      onRequest: requireRole(c, "client", "worker"),
      schema: {
        tags: ["queues"],
        summary: "Per queue: job counts by status, the age of the oldest claimable job, and why queued jobs wait",
        response: {
          200: z
            .object({
              items: z.array(
                z.object({ queue: z.string(), counts: Counts, oldestQueuedAgeSeconds: z.number().nullable(), waitingBecause: WaitingBecause }),
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
      const byQueue = new Map<string, { queue: string; counts: Record<string, number>; oldestQueuedAgeSeconds: number | null; waitingBecause: string[] }>();
      for (const r of rows) {
        const q = byQueue.get(r.queue) ?? {
          queue: r.queue,
          counts: Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])),
          oldestQueuedAgeSeconds: age.get(r.queue) ?? null,
          waitingBecause: [],
        };
        q.counts[r.status] = r.n;
        byQueue.set(r.queue, q);
      }
      const waiting = await svc.waitingBecause(
        [...byQueue.values()].filter((q) => (q.counts.queued ?? 0) > 0).map((q) => q.queue),
        tenant,
      );
      for (const [queue, reasons] of waiting) byQueue.get(queue)!.waitingBecause = reasons;
      return { items: [...byQueue.values()] as never };
    },
  );

  const route = { tags: ["queues"], params, querystring };
  app.get(
    "/v1/queues/:queue",
    { onRequest: admin, schema: { ...route, summary: "A queue's settings, counts and why its queued jobs wait", response: { 200: QueueView, ...errors(404) } } },
    async (req, reply) => {
      const tenant = tenantOf(req, reply);
      if (tenant === null) return reply;
      const out = await svc.get(req.params.queue, tenant);
      return out.ok ? out.value : fail(reply, { ...out, detail: "unknown queue" });
    },
  );

  app.put(
    "/v1/queues/:queue",
    {
      onRequest: admin,
      schema: { ...route, summary: "Replace a queue's settings (limits are enforced in the claim)", body: SettingsBody, response: { 200: QueueView, ...errors(404) } },
    },
    async (req, reply) => {
      const tenant = tenantOf(req, reply);
      if (tenant === null) return reply;
      const b = req.body;
      const out = await svc.replace(req.params.queue, tenant, {
        paused: b.paused ?? false,
        concurrency: b.concurrency ?? null,
        groupConcurrency: b.groupConcurrency ?? null,
        rateLimit: b.rateLimit ?? null,
        defaultTimeoutSeconds: b.defaultTimeoutSeconds ?? null,
      });
      return out.value;
    },
  );

  for (const action of ["pause", "resume"] as const) {
    app.post(
      `/v1/queues/:queue/${action}`,
      {
        onRequest: admin,
        schema: {
          ...route,
          summary: action === "pause" ? "Pause a queue: no job of it starts until resumed (idempotent)" : "Resume a paused queue (idempotent)",
          response: { 200: QueueView, ...errors(404) },
        },
      },
      async (req, reply) => {
        const tenant = tenantOf(req, reply);
        if (tenant === null) return reply;
        return (await svc[action](req.params.queue, tenant)).value;
      },
    );
  }
}
