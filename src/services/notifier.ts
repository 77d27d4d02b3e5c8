import type { Sql } from "../db/client.js";

const CHANNEL = "jobline_jobs";

/**
 * Wakes long-polling claimers when a job becomes claimable. One LISTEN
 * connection per process (postgres.js keeps a dedicated one), not one per
 * request. Local submits wake local waiters at once; the NOTIFY reaches
 * the other processes. Notifies are coalesced per tick.
 */
export function createNotifier(sql: Sql) {
  const waiters = new Set<{ queues: Set<string>; wake: () => void }>();
  const pending = new Set<string>();
  let scheduled = false;
  let listening: Promise<unknown> | null = null;
  let closed = false;

  const wakeLocal = (queue: string) => {
    for (const w of waiters) if (w.queues.has(queue)) w.wake();
  };

  const flush = () => {
    scheduled = false;
    const queues = [...pending];
    pending.clear();
    if (queues.length === 0) return;
    sql`SELECT pg_notify(${CHANNEL}, q) FROM unnest(${queues}::text[]) AS q`.catch(() => {
      // Waiters fall back to polling; a lost wake-up costs latency, never a job.
    });
  };

  return {
    async start(): Promise<void> {
      listening ??= sql.listen(CHANNEL, (queue) => wakeLocal(queue)).catch(() => null);
      await listening;
    },
    /** Announce that `queue` has a newly claimable job. */
    notify(queue: string): void {
      wakeLocal(queue);
      pending.add(queue);
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    },
    /** Resolves when one of `queues` is notified, after `ms`, or on abort. */
    wait(queues: string[], ms: number, signal?: AbortSignal): Promise<void> {
      if (closed) return Promise.resolve();
      return new Promise((resolve) => {
        const w = {
          queues: new Set(queues),
          wake: () => {
            clearTimeout(timer);
            waiters.delete(w);
            signal?.removeEventListener("abort", w.wake);
            resolve();
          },
        };
        const timer = setTimeout(w.wake, Math.max(0, ms));
        waiters.add(w);
        signal?.addEventListener("abort", w.wake, { once: true });
      });
    },
    /** Shutdown: release every waiter, and make later waits return at once, so long polls end now. */
    wakeAll(): void {
      closed = true;
      for (const w of [...waiters]) w.wake();
    },
    get closed(): boolean {
      return closed;
    },
  };
}

export type Notifier = ReturnType<typeof createNotifier>;
