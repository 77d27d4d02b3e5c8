import { z } from "zod";
import { BATCH_STATUSES } from "../../domain/batches.js";
import { MAX_BATCH_JOBS } from "../../services/batches.js";
import { Timestamp } from "./common.js";
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
    startedAt: Timestamp.nullable(),
    finishedAt: Timestamp.nullable(),
    version: z.number().int(),
  })
  .meta({ id: "Batch" });

