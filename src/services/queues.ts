import { JOB_STATUSES, type JobStatus } from "../domain/jobs.js";
import type { JobsRepository } from "../repositories/jobs.js";
import type { TenantScope } from "./jobs.js";

export interface QueueOverview {
  tenant: string;
  queue: string;
  counts: Record<JobStatus, number>;
  oldestQueuedAgeSeconds: number | null;
}

export function createQueueService(deps: { jobs: JobsRepository }) {
  /** Per (tenant, queue): a platform key sees two tenants' same-named queues apart, never summed. */
  async function overview(scope: TenantScope): Promise<QueueOverview[]> {
    const [rows, oldest] = await Promise.all([deps.jobs.countByQueue(scope), deps.jobs.oldestClaimableByQueue(scope)]);
    const key = (r: { tenant: string; queue: string }) => JSON.stringify([r.tenant, r.queue]);
    const age = new Map(oldest.map((o) => [key(o), Math.max(0, o.age)]));
    const byQueue = new Map<string, QueueOverview>();
    for (const r of rows) {
      const q = byQueue.get(key(r)) ?? {
        tenant: r.tenant,
        queue: r.queue,
        counts: Object.fromEntries(JOB_STATUSES.map((s) => [s, 0])) as Record<JobStatus, number>,
        oldestQueuedAgeSeconds: age.get(key(r)) ?? null,
      };
      q.counts[r.status] = r.n;
      byQueue.set(key(r), q);
    }
    return [...byQueue.values()];
  }
  return { overview };
}

export type QueueService = ReturnType<typeof createQueueService>;
