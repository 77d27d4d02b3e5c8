import { z } from "zod";
import { BATCH_STATUSES } from "../../domain/batches.js";
import { MAX_BATCH_JOBS } from "../../services/batches.js";
import { PageQuery } from "./pages.js";
import { NamedTenant, Timestamp, WebhookUrl } from "./common.js";
import { JobCounts, JobSubmitFields } from "./jobs.js";

const BatchJob = z.strictObject(JobSubmitFields).meta({ id: "BatchJobSubmit" });
export const JobArray = z.array(BatchJob).max(MAX_BATCH_JOBS);

const Counts = JobCounts.meta({ id: "BatchCounts", description: "Jobs of the batch per status" });

export const BatchSchema = z
  .object({
    id: z.uuid(),
    tenant: z.string(),
    status: z.enum(BATCH_STATUSES),
    total: z.number().int(),
    counts: Counts,
    webhookUrl: z.string().nullable(),
    generation: z.number().int(),
    cancelRequested: z.boolean(),
    createdAt: Timestamp,
    updatedAt: Timestamp,
    sealedAt: Timestamp.nullable(),
    sealBy: Timestamp.nullable().describe("An open batch not sealed by then is cancelled (seal_timeout)"),
    startedAt: Timestamp.nullable(),
    finishedAt: Timestamp.nullable(),
    version: z.number().int(),
  })
  .meta({ id: "Batch" });


// Requests of routes/batches.ts (inlined in the document: no component ids).

export const BatchCreateBody = z
  .strictObject({
    jobs: JobArray,
    seal: z.boolean().default(true),
    sealWithinSeconds: z
      .number()
      .int()
      .min(1)
      .max(31_536_000)
      .optional()
      .describe("An open batch not sealed within this (default 86400) is cancelled with its jobs (seal_timeout)"),
    webhookUrl: WebhookUrl.optional(),
    tenant: NamedTenant,
  })
  // A sealed batch of nothing would complete the moment it is created; only an open one may start empty.
  .refine((b) => b.jobs.length > 0 || b.seal === false, { message: "a sealed batch needs at least one job", path: ["jobs"] });

export const BatchAddJobsBody = z.strictObject({ jobs: JobArray.min(1) });

export const BatchListQuery = z.strictObject({ status: z.enum(BATCH_STATUSES).optional(), ...PageQuery });
