import type { Container } from "../container.js";
import { createWebhookDispatcher } from "../services/webhooks.js";
import { retainOnce } from "./retention.js";

/** A loop that runs `tick` every `intervalMs` until stopped; a failed tick is logged and retried next time. */
export function every(name: string, intervalMs: number, tick: () => Promise<unknown>, c: Container) {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const loop = async () => {
    if (stopped) return;
    running = tick().catch((e: unknown) => c.logger.warn({ err: e, loop: name }, "maintenance tick failed"));
    await running;
    running = null;
    if (!stopped) timer = setTimeout(loop, intervalMs);
  };
  timer = setTimeout(loop, 0);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/**
 * Lease reaper. Each statement requeues, fails or cancels up to `limit`
 * expired leases at once (reapExpired); a sweep repeats it only while full
 * batches come back. Safe in every replica at once (SKIP LOCKED). A dead
 * worker's job is back in the queue at most lease + reaper interval after
 * its last heartbeat, and the NOTIFY here wakes long polls everywhere.
 */
export async function reapOnce(c: Container, limit = 1000): Promise<number> {
  let total = 0;
  for (;;) {
    const rows = await c.repos.jobs.reapExpired(limit);
    for (const r of rows) {
      c.metrics.reaperRecoveries.inc({ to: r.status });
      c.metrics.transitions.inc({ from: "running", to: r.status });
      if (r.status === "queued") c.notifier.notify(r.queue);
    }
    c.capped.freed(rows.map((r) => r.queue));
    total += rows.length;
    if (rows.length < limit) break;
  }
  // Jobs a seal left with the open-batch tag (see releaseStragglers).
  for (;;) {
    const rows = await c.repos.jobs.releaseStragglers(limit);
    for (const q of new Set(rows.filter((r) => r.status === "queued").map((r) => r.queue))) c.notifier.notify(q);
    const cancelled = rows.filter((r) => r.status === "cancelled").length;
    if (cancelled > 0) c.metrics.transitions.inc({ from: "queued", to: "cancelled" }, cancelled);
    if (rows.length < limit) return total;
  }
}

/**
 * The worker process's background duties. Every one is safe to run in any
 * number of processes at once (SKIP LOCKED claims, guarded statements).
 */
export function startMaintenance(c: Container) {
  const webhooks = createWebhookDispatcher({ ...c, outbox: c.repos.outbox, tenants: c.repos.tenants });
  webhooks.start();
  const loops = [
    every("reaper", c.config.JOBLINE_REAPER_INTERVAL_MS, () => reapOnce(c), c),
    every("retention", c.config.JOBLINE_RETENTION_INTERVAL_MS, () => retainOnce(c), c),
  ];
  return {
    async stop() {
      await Promise.all([...loops.map((l) => l.stop()), webhooks.stop()]);
    },
  };
}
