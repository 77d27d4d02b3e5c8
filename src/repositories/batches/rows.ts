import type { Queryable } from "../../db/client.js";
import type { BatchStatus } from "../../domain/batches.js";
import { JOB_STATUSES, type JobStatus } from "../../domain/jobs.js";

export interface BatchRow {
  id: string;
  tenant: string;
  status: BatchStatus;
  webhookUrl: string | null;
  generation: number;
  total: number;
  remaining: number;
  succeededCount: number;
  failedCount: number;
  cancelledCount: number;
  cancelRequested: boolean;
  createdAt: Date;
  updatedAt: Date;
  sealedAt: Date | null;
  sealBy: Date | null;
  startedAt: Date | null;
  finishedAt: Date | null;
  version: number;
}

export type BatchCounts = Record<JobStatus, number>;

/** A batch with its live job counts, read in one statement so both come from one snapshot. */
export type CountedBatch = BatchRow & { counts: BatchCounts };

export const zeroCounts = (): BatchCounts => Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as BatchCounts;

/** Keyset position of a batch list: created_at as exact text (microseconds survive, unlike a JS Date). */
export interface BatchCursor {
  createdAt: string;
  id: string;
}


// The live counts: one GROUP BY over the jobs_batch_idx (batch_id, status) per batch.
export const countsOf = (q: Queryable, batchIdColumn: string) => q`
  (SELECT coalesce(jsonb_object_agg(s.status, s.n), '{}'::jsonb)
   FROM (SELECT status, count(*)::int AS n FROM jobs WHERE batch_id = ${q.unsafe(batchIdColumn)} GROUP BY status) s)`;

export function withCounts(r: BatchRow & { jobCounts: Partial<BatchCounts> }): CountedBatch {
  const { jobCounts, ...row } = r;
  return { ...row, counts: { ...zeroCounts(), ...jobCounts } };
}
