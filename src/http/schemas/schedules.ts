import { z } from "zod";
import { CATCH_UP, OVERLAP } from "../../domain/schedules.js";
import { Name, NamedTenant, Timestamp } from "./common.js";
import { JobSubmitFields } from "./jobs.js";

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

export const ScheduleCreate = z
  .strictObject({ ...ScheduleFields, tenant: NamedTenant })
  .meta({ id: "ScheduleCreate" });
export const SchedulePatch = z
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

