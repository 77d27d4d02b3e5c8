import type { WorkerDeps } from "../container.js";
import { startCascade } from "./cascade.js";
import { startReaper } from "./reaper.js";
import { startRetention } from "./retention.js";
import { startScheduler } from "./scheduler.js";
import { createWebhookDispatcher } from "./webhooks.js";

/**
 * The worker process's background duties, one file each: reaper.ts, retention.ts,
 * webhooks.ts, scheduler.ts, cascade.ts. Every one is safe to run in any number of processes at once (SKIP LOCKED
 * claims, guarded statements).
 */
export function startMaintenance(c: WorkerDeps) {
  const webhooks = createWebhookDispatcher({ delivery: c.services.webhooks, config: c.config, logger: c.logger });
  webhooks.start();
  const loops = [startReaper(c), startRetention(c), startScheduler(c), startCascade(c)];
  return {
    async stop() {
      await Promise.all([...loops.map((l) => l.stop()), webhooks.stop()]);
    },
  };
}
