import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { HttpDeps } from "../../container.js";
import { PLATFORM_TENANT } from "../../services/auth.js";
import { requireRole, type RoleHook, scope } from "../auth.js";
import { errors, fail, problem, sendProblem } from "../problem.js";
import { QueueOverviewItem, QueueParams, QueueQuery, QueueView, SettingsBody } from "../schemas/queues.js";
import type { Api } from "../types.js";

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

interface Ctx {
  svc: HttpDeps["services"]["queues"];
  admin: RoleHook;
}

const route = { tags: ["queues"], params: QueueParams, querystring: QueueQuery };

/** The queue routes; registered in this order, which is the OpenAPI document's. */
export async function queueRoutes(app: Api, c: HttpDeps) {
  const ctx: Ctx = { svc: c.services.queues, admin: requireRole(c, "admin") };
  registerOverview(app, ctx.svc, requireRole(c, "client", "worker"));
  registerSettings(app, ctx);
  for (const action of ["pause", "resume"] as const) registerPauseResume(app, ctx, action);
}

/** GET /v1/queues. */
function registerOverview(app: Api, svc: Ctx["svc"], reader: RoleHook) {
  app.get(
    "/v1/queues",
    {
      onRequest: reader,
      schema: {
        tags: ["queues"],
        operationId: "listQueues",
        summary: "Per queue of each tenant: job counts by status, the age of the oldest claimable job, and why queued jobs wait",
        response: { 200: z.object({ items: z.array(QueueOverviewItem) }).meta({ id: "QueueList" }), ...errors() },
      },
    },
    async (req) => ({ items: await svc.overview(scope(req)) as never }),
  );
}

/** GET and PUT /v1/queues/:queue. */
function registerSettings(app: Api, { svc, admin }: Ctx) {
  app.get(
    "/v1/queues/:queue",
    { onRequest: admin, schema: { ...route, operationId: "getQueue", summary: "A queue's settings, counts and why its queued jobs wait", response: { 200: QueueView, ...errors(404) } } },
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
      schema: { ...route, operationId: "setQueueSettings", summary: "Replace a queue's settings (limits are enforced in the claim)", body: SettingsBody, response: { 200: QueueView, ...errors(404) } },
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
}

/** POST /v1/queues/:queue/pause and /resume. */
function registerPauseResume(app: Api, { svc, admin }: Ctx, action: "pause" | "resume") {
  app.post(
    `/v1/queues/:queue/${action}`,
    {
      onRequest: admin,
      schema: {
        ...route,
        operationId: action === "pause" ? "pauseQueue" : "resumeQueue",
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
