import { z } from "zod";
import { JOB_STATUSES } from "../../domain/jobs.js";
import { JsonValue, Name, NamedTenant, safeText, Timestamp, Uuid, WebhookUrl } from "./common.js";

const MIN_RUN_AT = Date.parse("1970-01-01T00:00:00Z");
const MAX_RUN_AT = Date.parse("9999-12-31T23:59:59.999Z");

export const JobSubmitFields = {
  queue: Name,
  kind: Name,
  payload: JsonValue.optional(),
  priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
  groupKey: safeText(256).optional(),
  runAt: z.iso
    .datetime({ offset: true })
    // Year 0 or 10000 in UTC is a 500 from PostgreSQL, and years below 100 come back from the
    // driver's date parser as 20xx; any past runAt means "now", so the epoch is a safe floor.
    .refine((s) => {
      const t = Date.parse(s);
      return t >= MIN_RUN_AT && t <= MAX_RUN_AT;
    }, "must be between 1970-01-01 and 9999-12-31 (UTC)")
    .optional(),
  maxAttempts: z.number().int().min(1).max(100).optional(),
  webhookUrl: WebhookUrl.optional(),
};

export const JobSubmitBody = z
  .strictObject({
    ...JobSubmitFields,
    tenant: NamedTenant,
  })
  .meta({ id: "JobSubmit" });

const ErrorInfo = z.object({ message: z.string(), code: z.string().optional() }).passthrough();

export const JobSchema = z
  .object({
    id: z.uuid(),
    tenant: z.string(),
    queue: z.string(),
    kind: z.string(),
    payload: z.unknown(),
    priority: z.number().int(),
    groupKey: z.string().nullable(),
    runAt: Timestamp,
    status: z.enum(JOB_STATUSES),
    attempts: z.number().int(),
    maxAttempts: z.number().int(),
    leaseExpiresAt: Timestamp.nullable(),
    workerId: z.string().nullable(),
    cancelRequested: z.boolean(),
    result: z.unknown(),
    lastError: ErrorInfo.nullable(),
    errors: z
      .array(z.object({ attempt: z.number().int(), at: z.string(), code: z.string().nullable(), message: z.string() }))
      .describe("the last 20 failed attempts, oldest first"),
    batchId: z.uuid().nullable(),
    idempotencyKey: z.string().nullable(),
    webhookUrl: z.string().nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    startedAt: Timestamp.nullable(),
    finishedAt: Timestamp.nullable(),
    version: z.number().int(),
    scheduleId: z.uuid().nullable().describe("The schedule that made this job, if any"),
    scheduledFor: Timestamp.nullable().describe("The schedule's tick this job was made for"),
  })
  .meta({ id: "Job" });

export const ClaimedJobSchema = JobSchema.extend({ leaseToken: z.uuid() }).meta({ id: "ClaimedJob" });

/** A job to acknowledge as done: POST /v1/jobs/complete's items and process-next's `complete`. */
export const CompleteItem = z.strictObject({ id: Uuid, leaseToken: Uuid, result: JsonValue.optional() });

/** Jobs per status (a batch's, a queue's). */
export const JobCounts = z.object(
  Object.fromEntries(JOB_STATUSES.map((s) => [s, z.number().int()])) as Record<(typeof JOB_STATUSES)[number], z.ZodNumber>,
);
