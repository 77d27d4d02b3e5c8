import { JOB_STATUSES, type JobStatus } from "../domain/jobs.js";
import type { JobsRepository } from "../repositories/jobs.js";
import type { TenantScope } from "./jobs.js";

export interface QueueOverview {
  queue: string;
  counts: Record<JobStatus, number>;
  oldestQueuedAgeSeconds: number | null;
}

export function createQueueService(deps: { jobs: JobsRepository }) {
  /** Per queue: job counts by status and the age of the oldest claimable job. */
  async function overview(scope: TenantScope): Promise<QueueOverview[]> {
    const [rows, oldest] = await Promise.all([deps.jobs.countByQueue(scope), deps.jobs.oldestClaimableByQueue(scope)]);
    const age = new Map(oldest.map((o) => [o.queue, Math.max(0, o.age)]));
    const byQueue = new Map<string, QueueOverview>();
    for (const r of rows) {
      const q = byQueue.get(r.queue) ?? {
        queue: r.queue,
        counts: Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>,
        oldestQueuedAgeSeconds: age.get(r.queue) ?? null,
      };
      q.counts[r.status] = r.n;
      byQueue.set(r.queue, q);
    }
    return [...byQueue.values()];
  }
  return { overview };
}

export type QueueService = ReturnType<typeof createQueueService>;
