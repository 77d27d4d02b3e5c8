import type { Sql } from "../db/client.js";
import type { Cancel } from "./tripwire.js";

const CHANNEL = "jobline_jobs";

/** How often a process checks that its LISTEN still hears its own NOTIFY. */
const PROBE_MS = 1000;

/** What a waiting poll can take; `tenant` null is a platform key's (every tenant). */
export interface Interest {
  queues: string[];
  kinds?: string[] | undefined;
  tenant: string | null;
}
/** Jobs that became claimable: `kind` and `tenant` absent mean "any" (a batch, a promotion). */
export interface Announcement {
  queue: string;
  kind?: string | undefined;
  tenant?: string | undefined;
}
type Waiter = { queues: Set<string>; kinds: Set<string> | null; tenant: string | null; wake: (a: Announcement | null) => void };

const matches = (w: Omit<Waiter, "wake">, a: Announcement) =>
  w.queues.has(a.queue) &&
  (a.kind === undefined || w.kinds === null || w.kinds.has(a.kind)) &&
  (a.tenant === undefined || w.tenant === null || w.tenant === a.tenant);

/** How long an announcement no poll was waiting for stays owed to polls whose claim was in flight then. */
const OWED_MS = 5000;

/**
 * A NOTIFY payload: a bare queue name announces an unknown number of jobs (every waiter of the
 * queue wakes, as releases before counted wake-ups sent for all); `count queue kind tenant`
 * (names hold no spaces) announces `count` jobs of that kind and tenant.
 */
const payloadOf = (a: Announcement, count: number) =>
  a.kind === undefined || a.tenant === undefined || !Number.isFinite(count) ? a.queue : `${count} ${a.queue} ${a.kind} ${a.tenant}`;
function parsePayload(p: string): { a: Announcement; count: number } {
  const [n, queue, kind, tenant] = p.split(" ");
  if (queue === undefined || kind === undefined || tenant === undefined) return { a: { queue: p }, count: Number.POSITIVE_INFINITY };
  return { a: { queue, kind, tenant }, count: Math.max(1, Number(n) || 1) };
}

/**
 * The polls of this process waiting now, and the announcements none of them took, in order: a
 * poll marks the count before its claim, and a wait that starts after such an announcement
 * (which its claim may not have seen) takes it and returns at once instead of sleeping through
 * it. Owed announcements are dropped after OWED_MS, or beyond 10,000; `floor` then makes older
 * marks return at once.
 */
function createLocalWaiters() {
  const waiters = new Set<Waiter>();
  let announced = 0;
  let floor = 0;
  let owed: Array<{ seq: number; at: number; a: Announcement; left: number }> = [];
  const prune = (now: number) => {
    let i = 0;
    while (i < owed.length && (owed[i]!.left <= 0 || owed[i]!.at < now - OWED_MS)) i++;
    if (owed.length - i >= 10_000) {
      floor = owed[owed.length - 1]!.seq + 1;
      i = owed.length;
    }
    if (i > 0) owed = owed.slice(i);
  };
  return {
    waiters,
    mark: () => announced,
    /** Wakes up to `count` matching waiters, oldest first; returns how many jobs found none. */
    wake(a: Announcement, count: number) {
      const now = Date.now();
      prune(now);
      const seq = ++announced;
      let left = count;
      for (const w of waiters) {
        if (left <= 0) break;
        if (!matches(w, a)) continue;
        w.wake(a);
        left--;
      }
      if (left > 0) owed.push({ seq, at: now, a, left });
      return left;
    },
    /** An owed announcement made after `mark` that `w` can take, taken (one job of it). */
    takeOwed(w: Omit<Waiter, "wake">, mark: number): Announcement | null {
      if (mark < floor) return { queue: [...w.queues][0]! };
      for (let i = owed.length - 1; i >= 0 && owed[i]!.seq > mark; i--) {
        const e = owed[i]!;
        if (e.left > 0 && matches(w, e.a)) {
          e.left--;
          return e.a;
        }
      }
      return null;
    },
  };
}

/**
 * The LISTEN of this process. postgres.js re-subscribes after its LISTEN connection drops, but
 * only once: if PostgreSQL is still down then, the subscription is gone for good, and a failed
 * LISTEN stays registered so a retry on the same client only piles up listeners. So every
 * PROBE_MS the process sends itself a NOTIFY, and when the previous one went unheard (and the
 * database answers again) it replaces the whole listen client (`listenClient` makes one).
 * `on.subscribe` runs before each new client listens.
 */
function createListener(sql: Sql, o: NotifierOptions, on: { message: (payload: string) => void; subscribe: () => void }) {
  let listening: Promise<unknown> | null = null;
  let closed = false;
  let listenSql: Sql | null = null;
  let probeTimer: NodeJS.Timeout | null = null;
  let probing = false;
  // A queue name can never contain \u0001, so a probe never wakes a waiter.
  const probeToken = `\u0001probe:${process.pid}:${Math.random().toString(36).slice(2)}`;
  let heardProbe = true;

  const onMessage = (payload: string) => {
    if (payload === probeToken) heardProbe = true;
    else on.message(payload);
  };
  const dropListenClient = () => {
    const old = listenSql;
    listenSql = null;
    if (old) void old.end({ timeout: 0 }).catch(() => {});
  };
  const subscribe = async () => {
    dropListenClient();
    on.subscribe();
    const client = o.listenClient();
    listenSql = client;
    await client.listen(CHANNEL, onMessage).catch(() => null);
    if (o.also) await client.listen(o.also.channel, o.also.onMessage).catch(() => null);
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
  return {
    async start(): Promise<void> {
      listening ??= subscribe().then(() => {
        probeTimer = setInterval(() => void probe(), o.probeMs ?? PROBE_MS);
        probeTimer.unref();
      });
      await listening;
    },
    stop(): void {
      closed = true;
      if (probeTimer) clearInterval(probeTimer);
      dropListenClient();
    },
  };
}

export interface NotifierOptions {
  listenClient: () => Sql;
  probeMs?: number;
  /** Another channel heard on the same LISTEN connection (finishedWaits), re-subscribed with it. */
  also?: { channel: string; onMessage: (payload: string) => void };
}

/**
 * NOTIFYs this process sent and has not heard back yet, per payload. Its local waiters were
 * woken when it announced; the echo must not count as a second announcement, or a poll that
 * cannot take the job claims once more per submit. A NOTIFY that failed, or a LISTEN client
 * replaced meanwhile, never echoes: the counts are given back or dropped then.
 */
function createEchoes() {
  const echoes = new Map<string, number>();
  return {
    expect(payloads: string[]): void {
      if (echoes.size > 10_000) echoes.clear();
      for (const p of payloads) echoes.set(p, (echoes.get(p) ?? 0) + 1);
    },
    /** Takes one owed echo of `payload`; false when none is owed. */
    take(payload: string): boolean {
      const owed = echoes.get(payload);
      if (owed === undefined) return false;
      if (owed <= 1) echoes.delete(payload);
      else echoes.set(payload, owed - 1);
      return true;
    },
    clear: () => echoes.clear(),
  };
}

/** The jobs no local poll took, coalesced per tick into one NOTIFY statement to the other processes. */
function createRemoteAnnouncer(sql: Sql, echoes: ReturnType<typeof createEchoes>) {
  /** Per payload: the announcement and how many jobs to send to the other processes. */
  const pending = new Map<string, { a: Announcement; count: number }>();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const out = [...pending].map(([, p]) => payloadOf(p.a, p.count));
    pending.clear();
    if (out.length === 0) return;
    echoes.expect(out);
    sql`SELECT pg_notify(${CHANNEL}, p) FROM unnest(${out}::text[]) AS p`.catch(() => {
      // Waiters fall back to polling; a lost wake-up costs latency, never a job.
      for (const p of out) echoes.take(p);
    });
  };
  return (a: Announcement, count: number) => {
    const key = a.kind === undefined || a.tenant === undefined ? a.queue : `${a.queue} ${a.kind} ${a.tenant}`;
    const p = pending.get(key);
    pending.set(key, { a, count: (p?.count ?? 0) + count });
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}

/** A local long-poll's wait: see `wait` on the notifier. */
function waitForAnnouncement(
  local: ReturnType<typeof createLocalWaiters>,
  interest: string[] | Interest,
  ms: number,
  signal?: Cancel,
  since?: number,
): Promise<Announcement | null> {
  const i = Array.isArray(interest) ? { queues: interest, tenant: null } : interest;
  const filter = { queues: new Set(i.queues), kinds: i.kinds ? new Set(i.kinds) : null, tenant: i.tenant };
  const early = since === undefined ? null : local.takeOwed(filter, since);
  if (early) return Promise.resolve(early);
  const { waiters } = local;
  return new Promise((resolve) => {
    const w: Waiter = {
      ...filter,
      wake: (a) => {
        clearTimeout(timer);
        waiters.delete(w);
        signal?.removeEventListener("abort", onAbort);
        resolve(a);
      },
    };
    const onAbort = () => w.wake(null);
    const timer = setTimeout(onAbort, Math.max(0, ms));
    waiters.add(w);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

/**
 * Wakes long-polling claimers when jobs become claimable, one waiting poll per job: a submit
 * that woke every poll of its queue made each run a claim, all but one finding nothing. One
 * LISTEN connection per process, not one per request. Local announcements wake local waiters
 * at once; only the jobs no local poll was waiting for are sent to the other processes by
 * NOTIFY (coalesced per tick). A woken poll that leaves without claiming passes its wake-up on.
 */
export function createNotifier(sql: Sql, o: NotifierOptions) {
  const local = createLocalWaiters();
  const { waiters } = local;
  const echoes = createEchoes();
  const sendRemote = createRemoteAnnouncer(sql, echoes);
  let closed = false;
  const listener = createListener(sql, o, {
    message: (payload) => {
      if (echoes.take(payload)) return;
      const { a, count } = parsePayload(payload);
      local.wake(a, count);
    },
    subscribe: echoes.clear,
  });

  /** Announces locally, and sends what no local poll took to the other processes. */
  const announce = (a: Announcement, count: number) => {
    const left = local.wake(a, count);
    if (left > 0) sendRemote(a, left);
  };

  return {
    start: listener.start,
    /**
     * Announce that `queue` has newly claimable jobs: with `jobs` (their kind, tenant and
     * count, default 1) that many waiting polls that can take them wake; without, every poll
     * of the queue.
     */
    notify(queue: string, jobs?: { kind: string; tenant: string; count?: number }): void {
      if (!jobs) announce({ queue }, Number.POSITIVE_INFINITY);
      else announce({ queue, kind: jobs.kind, tenant: jobs.tenant }, jobs.count ?? 1);
    },
    /** A woken poll that leaves without claiming hands its wake-up to another poll. */
    passOn(a: Announcement): void {
      if (!closed) announce(a, 1);
    },
    /** A mark to pass to wait(): take it before the claim whose emptiness the wait follows. */
    mark: local.mark,
    /**
     * Resolves with the announcement that woke it, or null after `ms` or on abort; at once if an
     * announcement no poll took came after `since` (a job committed between an empty claim and
     * this wait). A bare list of queues takes every kind of every tenant.
     */
    wait(interest: string[] | Interest, ms: number, signal?: Cancel, since?: number): Promise<Announcement | null> {
      if (closed) return Promise.resolve(null);
      return waitForAnnouncement(local, interest, ms, signal, since);
    },
    /** Shutdown: release every waiter, and make later waits return at once, so long polls end now. */
    wakeAll(): void {
      closed = true;
      listener.stop();
      for (const w of [...waiters]) w.wake(null);
    },
    /** Polls waiting now. */
    get waiting(): number {
      return waiters.size;
    },
    get closed(): boolean {
      return closed;
    },
  };
}

export type Notifier = ReturnType<typeof createNotifier>;
