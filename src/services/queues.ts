import { JOB_STATUSES, type JobStatus } from "../domain/jobs.js";
import { err, ok } from "../domain/outcomes.js";
import type { JobsRepository } from "../repositories/jobs.js";
import { NO_SETTINGS, type QueueSettings, type QueuesRepository } from "../repositories/queues.js";
import type { TenantScope } from "./jobs.js";
import type { Notifier } from "./notifier.js";
import type { CappedQueues } from "./queues/capped.js";

// Queues: the per-queue overview, and queue controls' settings. The limits themselves are
// enforced by the claim statements (repositories/jobs/gatedClaim.ts); these only read and
// write the settings row.

export interface QueueOverview {
  tenant: string;
  queue: string;
  counts: Record<JobStatus, number>;
  oldestQueuedAgeSeconds: number | null;
  waitingBecause: string[];
}

type Deps = { jobs: JobsRepository; queues: QueuesRepository; capped: CappedQueues; notifier: Notifier };

/**
 * Per (tenant, queue): job counts by status, the age of the oldest claimable job, and why
 * queued jobs wait. A platform key sees two tenants' same-named queues apart, never summed.
 */
async function overview(deps: Deps, scope: TenantScope): Promise<QueueOverview[]> {
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
      waitingBecause: [],
    };
    q.counts[r.status] = r.n;
    byQueue.set(key(r), q);
  }
  // Reasons are per tenant's queue: one statement per tenant with queued jobs.
  const queuedByTenant = new Map<string, string[]>();
  for (const q of byQueue.values())
    if (q.counts.queued > 0) queuedByTenant.set(q.tenant, [...(queuedByTenant.get(q.tenant) ?? []), q.queue]);
  await Promise.all(
    [...queuedByTenant].map(async ([tenant, names]) => {
      for (const [queue, reasons] of await deps.queues.waitingBecause(names, tenant)) byQueue.get(key({ tenant, queue }))!.waitingBecause = reasons;
    }),
  );
  return [...byQueue.values()];
}

/** One queue's settings, counts and wait reasons; `exists` false when it has none of them. */
async function view(queues: QueuesRepository, queue: string, tenant: string, settings?: QueueSettings) {
  const [s, counts, waiting] = await Promise.all([
    settings ?? queues.get(queue, tenant),
    queues.counts(queue, tenant),
    queues.waitingBecause([queue], tenant),
  ]);
  const byStatus = Object.fromEntries(JOB_STATUSES.map((st) => [st, 0])) as Record<(typeof JOB_STATUSES)[number], number>;
  for (const c of counts) byStatus[c.status as keyof typeof byStatus] = c.n;
  return {
    queue,
    tenant,
    settings: s ?? NO_SETTINGS,
    counts: byStatus,
    waitingBecause: waiting.get(queue) ?? [],
    exists: s !== null || counts.length > 0,
  };
}

export function createQueueService(deps: Deps) {
  const { queues, capped, notifier } = deps;
  /** Settings just changed: this process routes the queue's claims to the gated text, and polls try again. */
  const changed = async (queue: string, tenant: string, write: Promise<QueueSettings>) => {
    const s = await write;
    capped.add(queue);
    notifier.notify(queue);
    const { exists: _, ...out } = await view(queues, queue, tenant, s);
    return ok(out);
  };
  return {
    overview: (scope: TenantScope) => overview(deps, scope),
    /** Another tenant's queue, or one this tenant never used, is not found. */
    async get(queue: string, tenant: string) {
      const v = await view(queues, queue, tenant);
      if (!v.exists) return err("not_found");
      const { exists: _, ...out } = v;
      return ok(out);
    },
    replace: (queue: string, tenant: string, settings: QueueSettings) => changed(queue, tenant, queues.replace(queue, tenant, settings)),
    pause: (queue: string, tenant: string) => changed(queue, tenant, queues.pause(queue, tenant)),
    resume: (queue: string, tenant: string) => changed(queue, tenant, queues.resume(queue, tenant)),
  };
}

export type QueueService = ReturnType<typeof createQueueService>;
