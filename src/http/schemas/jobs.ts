import { z } from "zod";
import { JOB_STATUSES } from "../../domain/jobs.js";
import { normaliseTraceparent } from "../../domain/traceContext.js";
import { MAX_PROGRESS_MESSAGE_BYTES, progressProblem } from "../../domain/progress.js";
import { WORKER_FIELDS, type WorkerField } from "../../services/representation.js";
import { PageQuery } from "./pages.js";
import { TraceHeaders } from "../traceHeaders.js";
import {
  InputTimestamp,
  JsonValue,
  LeaseSeconds,
  Name,
  NamedTenant,
  safeText,
  TimeoutSeconds,
  Timestamp,
  Tracestate,
  Uuid,
  WaitMs,
  WaitMsQuery,
  WebhookUrl,
  WorkerId,
} from "./common.js";

export const JobSubmitFields = {
  queue: Name,
  kind: Name,
  payload: JsonValue.optional(),
  priority: z.number().int().min(-1_000_000).max(1_000_000).optional(),
  groupKey: safeText(256).optional(),
  // Any past runAt means "now".
  runAt: InputTimestamp.optional(),
  maxAttempts: z.number().int().min(1).max(100).optional(),
  webhookUrl: WebhookUrl.optional(),
  timeoutSeconds: TimeoutSeconds.optional().describe("Execution timeout of each attempt (default: the queue's defaultTimeoutSeconds)"),
  expiresAt: InputTimestamp.optional().describe("Not started by then: never starts, ends cancelled (lastError.code expired)"),
  ttlSeconds: z.number().int().min(1).max(31_536_000).optional().describe("expiresAt as seconds from now"),
  dependsOn: z
    .strictObject({ jobs: z.array(Uuid).max(100).optional(), batches: z.array(Uuid).max(100).optional() })
    .refine((d) => (d.jobs?.length ?? 0) + (d.batches?.length ?? 0) <= 100, "at most 100 parents in all")
    .optional()
    .describe(
      "Parents (same tenant, at most 100 in all): the job waits until every one succeeded, and is cancelled (dependency_failed) when one fails or is cancelled",
    ),
  traceparent: z
    .string()
    .max(512)
    .refine((s) => normaliseTraceparent(s) !== null, "must be a W3C traceparent: 00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>")
    .optional()
    .describe("W3C trace context of the submitter (for SDKs; the traceparent header does the same). Stored with the job, handed to workers, sent with its webhooks"),
  tracestate: Tracestate.optional().describe("W3C tracestate accompanying traceparent"),
  tags: z
    .array(safeText(64))
    .max(20)
    .optional()
    .describe("Up to 20 labels of 1..64 characters; GET /v1/jobs?tag= finds the job by any of them"),
};

/** Heartbeat progress (DESIGN.md limits): message ≤ 1 KiB, data ≤ 16 KiB of JSON. */
export const ProgressInput = z
  .strictObject({
    percent: z.number().min(0).max(100).optional(),
    message: z.string().max(MAX_PROGRESS_MESSAGE_BYTES).optional(),
    data: z.unknown().optional(),
  })
  .superRefine((p, ctx) => {
    const bad = progressProblem(p);
    if (bad) ctx.addIssue({ code: "custom", message: bad });
  })
  .describe("Stored on the job (GET shows it with the time it arrived); message ≤ 1 KiB, data ≤ 16 KiB of JSON")
  .meta({ id: "ProgressInput" });

/** Submit-only: a batch's jobs take no dedupe key. */
export const Dedupe = z
  .strictObject({ key: safeText(256).pipe(z.string().min(1)), replace: z.boolean().optional() })
  .describe("While a job of this tenant and queue with this key is queued or running, return it instead (200, Jobline-Deduplicated: true)");

export const JobSubmitBody = z
  .strictObject({
    ...JobSubmitFields,
    dedupe: Dedupe.optional(),
    tenant: NamedTenant,
  })
  .refine((b) => b.expiresAt === undefined || b.ttlSeconds === undefined, "give expiresAt or ttlSeconds, not both")
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
    timeoutSeconds: z.number().int().nullable(),
    deadlineAt: Timestamp.nullable().describe("The current (or last) attempt's deadline"),
    expiresAt: Timestamp.nullable(),
    dedupeKey: z.string().nullable(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    startedAt: Timestamp.nullable(),
    finishedAt: Timestamp.nullable(),
    version: z.number().int(),
    scheduleId: z.uuid().nullable().describe("The schedule that made this job, if any"),
    scheduledFor: Timestamp.nullable().describe("The schedule's tick this job was made for"),
    dependsOn: z
      .object({ jobs: z.array(z.uuid()), batches: z.array(z.uuid()) })
      .nullable()
      .optional()
      .describe("The parents named at submit"),
    pendingDependencies: z.number().int().optional().describe("Parents not finished yet (waiting jobs)"),
    traceparent: z.string().nullable().describe("W3C trace context the job carries (docs/tracing.md); workers start their span from it"),
    tracestate: z.string().nullable(),
    tags: z.array(z.string()),
    progress: z
      .object({ percent: z.number().optional(), message: z.string().optional(), data: z.unknown().optional(), at: z.string() })
      .nullable()
      .describe("The latest progress the lease holder sent with a heartbeat"),
  })
  .meta({ id: "Job" });

export const ClaimedJobSchema = JobSchema.extend({ leaseToken: z.uuid() }).meta({ id: "ClaimedJob" });

/** process-next's `fields: "worker"`: only what a worker needs to run the job and report on it. */
export const WorkerJobSchema = ClaimedJobSchema.pick(Object.fromEntries(WORKER_FIELDS.map((k) => [k, true])) as Record<WorkerField, true>)
  .describe(`A leased job with only the fields a worker needs: ${WORKER_FIELDS.join(", ")} (process-next with \`fields: "worker"\`)`)
  .meta({ id: "WorkerJob" });

/** A job to acknowledge as done: POST /v1/jobs/complete's items and process-next's `complete`. */
export const CompleteItem = z.strictObject({ id: Uuid, leaseToken: Uuid, result: JsonValue.optional() });

// POST /v1/process-next (routes/processNext.ts).

export const ProcessNextBody = z.strictObject({
  queues: z.array(Name).min(1).max(50),
  kinds: z.array(Name).max(100).optional(),
  workerId: WorkerId,
  max: z.number().int().min(1).max(100).default(1),
  leaseSeconds: LeaseSeconds.default(60),
  waitMs: WaitMs.default(0),
  complete: z.array(CompleteItem).max(100).optional(),
  fields: z
    .enum(["full", "worker"])
    .default("full")
    .describe(`"full" (default): each job as GET /v1/jobs/{id} shows it, plus leaseToken. "worker": only ${WORKER_FIELDS.join(", ")}`),
});

/** Jobs per status (a batch's, a queue's). */
export const JobCounts = z.object(
  Object.fromEntries(JOB_STATUSES.map((s) => [s, z.number().int()])) as Record<(typeof JOB_STATUSES)[number], z.ZodNumber>,
);

// Requests of routes/jobs.ts and routes/jobActions.ts (inlined in the document: no component ids).

export const SubmitHeaders = z.object({ "idempotency-key": z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/).optional(), ...TraceHeaders });

export const JobWaitQuery = z.strictObject({
  waitMs: WaitMsQuery.optional().describe("Answer as soon as the job is finished (succeeded, failed, cancelled), or after this many ms with the job as it is then"),
});

/** What selects jobs: GET /v1/jobs's query and POST /v1/jobs/bulk's filter. */
export const JobFilterFields = {
  queue: Name.optional(),
  status: z.enum(JOB_STATUSES).optional(),
  kind: Name.optional(),
  batchId: Uuid.optional(),
  tag: safeText(64).optional(),
  createdAfter: InputTimestamp.optional(),
  createdBefore: InputTimestamp.optional(),
};

export const JobListQuery = z.strictObject({
  ...JobFilterFields,
  createdAfter: InputTimestamp.optional().describe("Only jobs created after this instant"),
  createdBefore: InputTimestamp.optional().describe("Only jobs created before this instant"),
  ...PageQuery,
});

export const ClaimBody = z.strictObject({ workerId: WorkerId, leaseSeconds: LeaseSeconds.optional() });
export const HeartbeatBody = z.strictObject({ leaseToken: Uuid, leaseSeconds: LeaseSeconds.optional(), progress: ProgressInput.optional() });
export const CompleteBody = z.strictObject({ leaseToken: Uuid, result: JsonValue.optional() });
export const CompleteManyBody = z.strictObject({ items: z.array(CompleteItem).min(1).max(1000) });

export const FailBody = z.strictObject({
  leaseToken: Uuid,
  error: z.strictObject({ message: z.string().max(10_000), code: z.string().max(200).optional() }).refine(
    (e) => JsonValue.safeParse(e).success,
    "contains characters PostgreSQL cannot store",
  ),
  retryable: z.boolean().default(true),
  retryAfterSeconds: z.number().min(0).max(31_536_000).optional(),
});
