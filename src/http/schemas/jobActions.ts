import { z } from "zod";
import { Uuid } from "./common.js";
import { JobFilterFields } from "./jobs.js";

// The operator's actions on jobs (routes/jobActions.ts). Apart from schemas/jobs.ts so that JobBulk
// keeps its place among the document's components (they follow the order schemas are made in).

/** POST /v1/jobs/bulk: an action on jobs given by ids or by a filter. */
export const BulkBody = z
  .strictObject({
    action: z.enum(["cancel", "retry", "delete"]),
    ids: z.array(Uuid).min(1).max(1000).optional(),
    filter: z.strictObject(JobFilterFields).optional(),
    limit: z.number().int().min(1).max(10_000).optional(),
  })
  .refine((b) => (b.ids === undefined) !== (b.filter === undefined), "give either ids or filter")
  .meta({ id: "JobBulk" });

/** Made where the route is registered, as pageSchema: the document's components keep that order. */
export const bulkResult = () =>
  z.object({ matched: z.number().int(), changed: z.number().int(), skipped: z.number().int() }).meta({ id: "JobBulkResult" });
