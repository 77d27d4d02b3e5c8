import { z } from "zod";
import { WAIT_REASONS } from "../../domain/queues.js";
import { Name, TenantName, TimeoutSeconds } from "./common.js";
import { JobCounts } from "./jobs.js";

// Queue controls' request and response schemas (routes/queues.ts).

export const WaitingBecause = z.array(z.enum(WAIT_REASONS)).describe("Why queued jobs wait now (a snapshot; several may hold at once).");
const Limit = z.number().int().min(1).max(1_000_000);

export const SettingsBody = z
  .strictObject({
    paused: z.boolean().optional().describe("Default false."),
    concurrency: Limit.nullable().optional().describe("At most this many of the queue's jobs running at once."),
    groupConcurrency: Limit.nullable().optional().describe("At most this many running per groupKey; 1 = serial per key, in order."),
    rateLimit: z
      .strictObject({ limit: Limit, periodSeconds: z.number().int().min(1).max(86_400) })
      .nullable()
      .optional()
      .describe("At most `limit` jobs start in any window of `periodSeconds`."),
    defaultTimeoutSeconds: TimeoutSeconds.nullable().optional(),
  })
  .meta({ id: "QueueSettingsPut", description: "Replaces the whole settings object: an absent field means no limit (and not paused)." });
export const Settings = z
  .object({
    paused: z.boolean(),
    concurrency: z.number().int().nullable(),
    groupConcurrency: z.number().int().nullable(),
    rateLimit: z.object({ limit: z.number().int(), periodSeconds: z.number().int() }).nullable(),
    defaultTimeoutSeconds: z.number().int().nullable(),
  })
  .meta({ id: "QueueSettings" });
export const QueueView = z
  .object({ queue: z.string(), tenant: z.string(), settings: Settings, counts: JobCounts, waitingBecause: WaitingBecause })
  .meta({ id: "Queue" });
export const QueueParams = z.strictObject({ queue: Name });
export const QueueQuery = z.strictObject({ tenant: TenantName.optional().describe("Required with a platform key (tenant `*`).") });


/** One (tenant, queue) of GET /v1/queues (inlined: the list is the component). */
export const QueueOverviewItem = z.object({
  queue: z.string(),
  tenant: z.string().describe("A platform key sees each tenant's queue of the same name as its own item"),
  counts: JobCounts,
  oldestQueuedAgeSeconds: z.number().nullable(),
  waitingBecause: WaitingBecause,
});
