import { JOB_STATUSES } from "../../domain/jobs.js";
import { err, ok } from "../../domain/outcomes.js";
import { NO_SETTINGS, type QueueSettings, type QueuesRepository } from "../../repositories/queues.js";
import type { Notifier } from "../notifier.js";
import type { CappedQueues } from "./capped.js";

// Queue controls' use cases. The limits themselves are enforced by the claim statements
// (repositories/jobs/gatedClaim.ts); these only read and write the settings row.

export function createQueueService(deps: { queues: QueuesRepository; capped: CappedQueues; notifier: Notifier }) {
  const { queues, capped, notifier } = deps;

  async function view(queue: string, tenant: string, settings?: QueueSettings) {
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

  /** Settings just changed: this process routes the queue's claims to the gated text, and polls try again. */
  const changed = (queue: string, s: QueueSettings) => {
    capped.add(queue);
    notifier.notify(queue);
    return s;
  };

  return {
    /** Another tenant's queue, or one this tenant never used, is not found. */
    async get(queue: string, tenant: string) {
      const v = await view(queue, tenant);
      if (!v.exists) return err("not_found");
      const { exists: _, ...out } = v;
      return ok(out);
    },
    async replace(queue: string, tenant: string, settings: QueueSettings) {
      const { exists: _, ...out } = await view(queue, tenant, changed(queue, await queues.replace(queue, tenant, settings)));
      return ok(out);
    },
    async pause(queue: string, tenant: string) {
      const { exists: _, ...out } = await view(queue, tenant, changed(queue, await queues.pause(queue, tenant)));
      return ok(out);
    },
    async resume(queue: string, tenant: string) {
      const { exists: _, ...out } = await view(queue, tenant, changed(queue, await queues.resume(queue, tenant)));
      return ok(out);
    },
    waitingBecause: (names: string[], tenant: string | null) => queues.waitingBecause(names, tenant),
  };
}

export type QueueService = ReturnType<typeof createQueueService>;
