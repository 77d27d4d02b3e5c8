import { createWebhookDelivery, type DispatcherDeps, type WebhookDelivery } from "../services/webhooks.js";

/**
 * The delivery service to run (the container's services.webhooks), or the dependencies to build
 * one with its own settings (tests give a short poll and an allow-list).
 */
export type DispatcherInput = (Pick<DispatcherDeps, "config" | "logger"> & { delivery: WebhookDelivery }) | DispatcherDeps;

/**
 * Delivers outbox rows. Any number of dispatchers (one per worker process)
 * may run against one database: rows are leased with SKIP LOCKED, and the
 * lease outlives the request timeout, so a row is in one dispatcher's hands
 * at a time and only that dispatcher can settle it.
 */
export function createWebhookDispatcher(d: DispatcherInput) {
  const cfg = d.config;
  const delivery = "delivery" in d ? d.delivery : createWebhookDelivery(d);
  const log = d.logger.child({ component: "webhooks" });
  let inflight = 0;
  let stopped = true;
  let nudge: (() => void) | null = null;
  let loopDone: Promise<void> = Promise.resolve();
  const idle = new Set<() => void>();
  const wake = () => {
    nudge?.();
    nudge = null;
  };

  async function loop() {
    const concurrency = cfg.JOBLINE_WEBHOOK_CONCURRENCY;
    while (!stopped) {
      const free = concurrency - inflight;
      let saturated = false;
      if (free > 0) {
        try {
          const rows = await delivery.claimDue(free);
          saturated = rows.length === free;
          for (const r of rows) {
            inflight++;
            delivery.deliver(r)
              .catch((e: unknown) => log.error({ err: e, outbox: r.id }, "webhook delivery crashed; retried after its lease expires"))
              .finally(() => {
                inflight--;
                if (inflight === 0) for (const f of idle) f();
                // A freed slot only matters when more rows may be waiting.
                if (saturated) wake();
              });
          }
        } catch (e) {
          log.warn({ err: e }, "claiming webhook deliveries failed");
        }
      }
      if (saturated && inflight < concurrency) continue;
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, cfg.JOBLINE_WEBHOOK_POLL_MS);
        nudge = () => {
          clearTimeout(t);
          resolve();
        };
      });
    }
  }

  return {
    start() {
      if (!stopped) return;
      stopped = false;
      loopDone = loop();
    },
    /** Stops claiming and waits for the requests in flight (each bounded by the timeout). */
    async stop() {
      stopped = true;
      wake();
      await loopDone;
      if (inflight > 0) await new Promise<void>((resolve) => idle.add(resolve));
    },
  };
}

export type WebhookDispatcher = ReturnType<typeof createWebhookDispatcher>;
