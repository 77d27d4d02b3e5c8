import { z } from "zod";
import type { HttpDeps } from "../../container.js";
import type { ScheduleRow } from "../../repositories/schedules.js";
import { otherTenantRefused, requireRole, type RoleHook, scope, writeTenant } from "../auth.js";
import { keysetPage, malformedCursor } from "../cursor.js";
import { PageQuery, pageSchema } from "../schemas/pages.js";
import { errors, fail } from "../problem.js";
import { IdParams } from "../schemas/common.js";
import { ScheduleCreate, SchedulePatch, ScheduleSchema } from "../schemas/schedules.js";
import type { Api } from "../types.js";

const iso = (d: Date | null) => (d === null ? null : d.toISOString());

export function scheduleDto(r: ScheduleRow) {
  return {
    id: r.id,
    tenant: r.tenant,
    name: r.name,
    cron: r.cron,
    timezone: r.timezone,
    job: r.job,
    overlap: r.overlap,
    catchUp: r.catchUp,
    paused: r.paused,
    nextRunAt: iso(r.nextRunAt),
    lastRunAt: iso(r.lastRunAt),
    lastJobId: r.lastJobId,
    createdAt: r.createdAt.toISOString(),
    updatedAt: r.updatedAt.toISOString(),
    version: r.version,
  };
}

const tags = ["schedules"];

export async function scheduleRoutes(app: Api, c: HttpDeps) {
  const client = requireRole(c, "client");
  collectionRoutes(app, c.services.schedules, client);
  itemRoutes(app, c.services.schedules, client);
}

type Svc = HttpDeps["services"]["schedules"];

/** POST and GET /v1/schedules. */
function collectionRoutes(app: Api, svc: Svc, client: RoleHook) {
  app.post(
    "/v1/schedules",
    {
      onRequest: client,
      schema: { tags, operationId: "createSchedule", summary: "Create a cron schedule", body: ScheduleCreate, response: { 201: ScheduleSchema, ...errors(409, 413) } },
    },
    async (req, reply) => {
      const { tenant: named, ...input } = req.body;
      const tenant = writeTenant(req, named);
      if (tenant === null) return otherTenantRefused(reply);
      const out = await svc.create(tenant, { ...input, job: { ...input.job, payload: input.job.payload ?? {} } });
      if (!out.ok) return fail(reply, out);
      return reply.code(201).header("location", `/v1/schedules/${out.value.id}`).send(scheduleDto(out.value));
    },
  );

  app.get(
    "/v1/schedules",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "listSchedules", summary: "List schedules, newest first (keyset pagination)",
        querystring: z.strictObject(PageQuery),
        response: { 200: pageSchema(ScheduleSchema, "ScheduleList"), ...errors() },
      },
    },
    async (req, reply) => {
      const page = await keysetPage(
        req.query,
        (after, n) => svc.list(scope(req), n, after),
        (r) => ({ createdAt: r.cursorTs, id: r.id }),
        scheduleDto,
      );
      return page ?? malformedCursor(reply);
    },
  );

}

/** GET, PATCH and DELETE /v1/schedules/:id. */
function itemRoutes(app: Api, svc: Svc, client: RoleHook) {
  app.get(
    "/v1/schedules/:id",
    { onRequest: client, schema: { tags, operationId: "getSchedule", summary: "Get a schedule", params: IdParams, response: { 200: ScheduleSchema, ...errors(404) } } },
    async (req, reply) => {
      const out = await svc.get(req.params.id, scope(req));
      return out.ok ? scheduleDto(out.value) : fail(reply, out);
    },
  );

  app.patch(
    "/v1/schedules/:id",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "updateSchedule", summary: "Change a schedule (pause, resume, cron, job, …)",
        params: IdParams,
        body: SchedulePatch,
        response: { 200: ScheduleSchema, ...errors(404, 409, 413) },
      },
    },
    async (req, reply) => {
      const { job, ...rest } = req.body;
      const out = await svc.patch(req.params.id, scope(req), { ...rest, ...(job ? { job: { ...job, payload: job.payload ?? {} } } : {}) });
      return out.ok ? scheduleDto(out.value) : fail(reply, out);
    },
  );

  app.delete(
    "/v1/schedules/:id",
    { onRequest: client, schema: { tags, operationId: "deleteSchedule", summary: "Delete a schedule (its jobs stay)", params: IdParams, response: { 204: z.null().describe("Deleted"), ...errors(404) } } },
    async (req, reply) => {
      const out = await svc.remove(req.params.id, scope(req));
      return out.ok ? reply.code(204).send(null) : fail(reply, out);
    },
  );
}
