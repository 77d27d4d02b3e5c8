import { z } from "zod";
import type { Container } from "../../container.js";
import { CATCH_UP, OVERLAP } from "../../domain/schedules.js";
import type { ScheduleRow } from "../../repositories/schedules.js";
import { PLATFORM_TENANT } from "../../services/auth.js";
import { requireRole, scope } from "../auth.js";
import { keysetPage, PageQuery } from "../cursor.js";
import { errors, fail, problem, sendProblem } from "../problem.js";
import { IdParams, JobSubmitFields, Name, TenantName, Timestamp } from "../schemas.js";
import type { Api } from "../types.js";

const { runAt: _runAt, ...templateFields } = JobSubmitFields;
const ScheduleJob = z.strictObject(templateFields).meta({ id: "ScheduleJob", description: "The job each tick submits (POST /v1/jobs's fields without runAt)" });
const Cron = z.string().min(1).max(256).describe("5 fields (minute hour day-of-month month day-of-week), or 6 with seconds first");
const Timezone = z.string().min(1).max(64).describe("IANA time zone, default UTC");
const Overlap = z.enum(OVERLAP).describe('"skip": no new run while the previous run of this schedule is queued or running');
const CatchUp = z.enum(CATCH_UP).describe('after downtime: "none" runs nothing, "latest" one run for the latest missed tick');

const ScheduleFields = {
  name: Name,
  cron: Cron,
  timezone: Timezone.optional(),
  job: ScheduleJob,
  overlap: Overlap.optional(),
  catchUp: CatchUp.optional(),
  paused: z.boolean().optional(),
};

const ScheduleCreate = z
  .strictObject({ ...ScheduleFields, tenant: TenantName.optional().describe("Only a platform key (tenant `*`) may name it; default `default`.") })
  .meta({ id: "ScheduleCreate" });
const SchedulePatch = z
  .strictObject({
    name: Name.optional(),
    cron: Cron.optional(),
    timezone: Timezone.optional(),
    job: ScheduleJob.optional(),
    overlap: Overlap.optional(),
    catchUp: CatchUp.optional(),
    paused: z.boolean().optional().describe("false resumes from the next tick after now; ticks missed while paused do not run"),
  })
  .meta({ id: "SchedulePatch" });

export const ScheduleSchema = z
  .object({
    id: z.uuid(),
    tenant: z.string(),
    name: z.string(),
    cron: z.string(),
    timezone: z.string(),
    job: z.record(z.string(), z.unknown()),
    overlap: z.enum(OVERLAP),
    catchUp: z.enum(CATCH_UP),
    paused: z.boolean(),
    nextRunAt: Timestamp.nullable().describe("null while paused"),
    lastRunAt: Timestamp.nullable().describe("the tick of the last job this schedule made"),
    lastJobId: z.uuid().nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    version: z.number().int(),
  })
  .meta({ id: "Schedule" });

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

export async function scheduleRoutes(app: Api, c: Container) {
  const svc = c.services.schedules;
  const client = requireRole(c, "client");
  const tags = ["schedules"];

  app.post(
    "/v1/schedules",
    {
      onRequest: client,
      schema: { tags, summary: "Create a cron schedule", body: ScheduleCreate, response: { 201: ScheduleSchema, ...errors(409, 413) } },
    },
    async (req, reply) => {
      const { tenant: named, ...input } = req.body;
      const own = req.principal.tenant;
      if (named !== undefined && own !== PLATFORM_TENANT && named !== own)
        return sendProblem(reply, problem("invalid_request", "only a platform key (tenant *) may name another tenant", 400));
      const tenant = own === PLATFORM_TENANT ? (named ?? "default") : own;
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
        summary: "List schedules, newest first (keyset pagination)",
        querystring: z.strictObject(PageQuery),
        response: {
          200: z.object({ items: z.array(ScheduleSchema), nextCursor: z.string().nullable() }).meta({ id: "ScheduleList" }),
          ...errors(),
        },
      },
    },
    async (req, reply) => {
      const page = await keysetPage(
        req.query,
        (after, n) => svc.list(scope(req), n, after),
        (r) => ({ createdAt: r.cursorTs, id: r.id }),
        scheduleDto,
      );
      return page ?? sendProblem(reply, problem("invalid_request", "malformed cursor", 400));
    },
  );

  app.get(
    "/v1/schedules/:id",
    { onRequest: client, schema: { tags, summary: "Get a schedule", params: IdParams, response: { 200: ScheduleSchema, ...errors(404) } } },
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
        summary: "Change a schedule (pause, resume, cron, job, …)",
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
    { onRequest: client, schema: { tags, summary: "Delete a schedule (its jobs stay)", params: IdParams, response: { 204: z.null().describe("Deleted"), ...errors(404) } } },
    async (req, reply) => {
      const out = await svc.remove(req.params.id, scope(req));
      return out.ok ? reply.code(204).send(null) : fail(reply, out);
    },
  );
}
