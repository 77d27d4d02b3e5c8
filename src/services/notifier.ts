import type { Sql } from "../db/client.js";
import type { Cancel } from "./tripwire.js";

const CHANNEL = "jobline_jobs";

/** How often a process checks that its LISTEN still hears its own NOTIFY. */
const PROBE_MS = 1000;

/**
 * Wakes long-polling claimers when a job becomes claimable. One LISTEN
 * connection per process, not one per request. Local submits wake local
 * waiters at once; the NOTIFY reaches the other processes. Notifies are
 * coalesced per tick.
 *
 * `listenClient` makes the client that holds the LISTEN. postgres.js
 * re-subscribes after its LISTEN connection drops, but only once: if
 * PostgreSQL is still down then, the subscription is gone for good, and a
 * failed LISTEN stays registered so a retry on the same client only piles up
 * listeners. So every PROBE_MS the process sends itself a NOTIFY, and when the
 * previous one went unheard (and the database answers again) it replaces the
 * whole listen client.
 */
export function createNotifier(sql: Sql, o: { listenClient: () => Sql; probeMs?: number }) {
  const waiters = new Set<{ queues: Set<string>; wake: () => void }>();
  const pending = new Set<string>();
  let scheduled = false;
  let listening: Promise<unknown> | null = null;
  let closed = false;
  let listenSql: Sql | null = null;
  let probeTimer: NodeJS.Timeout | null = null;
  let probing = false;
  // A queue name can never contain \u0001, so a probe never wakes a waiter.
  const probeToken = `\u0001probe:${process.pid}:${Math.random().toString(36).slice(2)}`;
  let heardProbe = true;

  // NOTIFYs this process sent and has not heard back yet, per queue. Its local waiters were
  // woken when it announced; the echo must not count as a second announcement, or a poll that
  // cannot take the job claims once more per submit. A NOTIFY that failed, or a LISTEN client
  // replaced meanwhile, never echoes: the counts are given back or dropped then.
  const echoes = new Map<string, number>();
  /** Takes one owed echo of `queue`; false when none is owed. */
  const takeEcho = (queue: string) => {
    const owed = echoes.get(queue);
    if (owed === undefined) return false;
    if (owed <= 1) echoes.delete(queue);
    else echoes.set(queue, owed - 1);
    return true;
  };
  const onMessage = (queue: string) => {
    if (queue === probeToken) heardProbe = true;
    else if (!takeEcho(queue)) wakeLocal(queue);
  };

  const dropListenClient = () => {
    const old = listenSql;
    listenSql = null;
    if (old) void old.end({ timeout: 0 }).catch(() => {});
  };

  const subscribe = async () => {
    dropListenClient();
    echoes.clear();
    const client = o.listenClient();
    listenSql = client;
    await client.listen(CHANNEL, onMessage).catch(() => null);
    if (closed) dropListenClient();
  };

  const probe = async () => {
    if (closed || probing) return;
    probing = true;
    try {
      if (!heardProbe) await subscribe();
      if (closed) return;
      heardProbe = false;
      await sql`SELECT pg_notify(${CHANNEL}, ${probeToken})`;
    } catch {
      // The database is down: the next probe tries again.
      heardProbe = true;
    } finally {
      probing = false;
    }
  };

  // Which queues were announced when: a poll marks the count before its claim, and a wait that
  // starts after an announcement it could not have seen returns at once instead of sleeping
  // through it. The map is cleared when large; `floor` then makes older marks wake at once.
  let announced = 0;
  let floor = 0;
  const lastAnnounced = new Map<string, number>();
  const wakeLocal = (queue: string) => {
    if (lastAnnounced.size >= 10_000) {
      lastAnnounced.clear();
      floor = announced + 1;
    }
    lastAnnounced.set(queue, ++announced);
    for (const w of waiters) if (w.queues.has(queue)) w.wake();
  };
  const announcedSince = (queues: string[], mark: number) =>
    mark < floor || queues.some((q) => (lastAnnounced.get(q) ?? 0) > mark);

  const flush = () => {
    scheduled = false;
    const queues = [...pending];
    pending.clear();
    if (queues.length === 0) return;
    if (echoes.size > 10_000) echoes.clear();
    for (const q of queues) echoes.set(q, (echoes.get(q) ?? 0) + 1);
    sql`SELECT pg_notify(${CHANNEL}, q) FROM unnest(${queues}::text[]) AS q`.catch(() => {
      // Waiters fall back to polling; a lost wake-up costs latency, never a job.
      for (const q of queues) takeEcho(q);
    });
  };

  return {
    async start(): Promise<void> {
      listening ??= subscribe().then(() => {
        const every = o.probeMs ?? PROBE_MS;
        probeTimer = setInterval(() => void probe(), every);
        probeTimer.unref();
      });
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
    /** A mark to pass to wait(): take it before the claim whose emptiness the wait follows. */
    mark(): number {
      return announced;
    },
    /**
     * Resolves when one of `queues` is notified, after `ms`, or on abort; at once if one was
     * notified after `since` (a job committed between an empty claim and this wait).
     */
    wait(queues: string[], ms: number, signal?: Cancel, since?: number): Promise<void> {
      if (closed || (since !== undefined && announcedSince(queues, since))) return Promise.resolve();
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
      if (probeTimer) clearInterval(probeTimer);
      dropListenClient();
      for (const w of [...waiters]) w.wake();
    },
    get closed(): boolean {
      return closed;
    },
  };
}

export type Notifier = ReturnType<typeof createNotifier>;
