import type { Sql } from "../db/client.js";
import type { Cancel } from "./tripwire.js";

/** The channel finalisations are announced on: a payload is job ids separated by spaces. */
export const FINISHED_CHANNEL = "jobline_finished";
/** PostgreSQL's NOTIFY payload limit is 8000 bytes; an id is 36. */
const MAX_PAYLOAD_BYTES = 7900;
/** Ids finalised in this window go out as one NOTIFY statement. */
const FLUSH_MS = 10;
/**
 * The backstop for finalisations no statement announced (a batch cancel, which reports counts
 * only; a NOTIFY lost while the listen connection was being replaced): one query per process
 * per period for every job waited on, never one per waiting request.
 */
const SWEEP_MS = 5000;

/** Per job id (lower case), the waits to wake when it finishes. */
type Waiters = Map<string, Set<() => void>>;

function wakeIds(waiters: Waiters, ids: Iterable<string>): void {
  for (const id of ids) {
    const set = waiters.get(id);
    if (!set) continue;
    waiters.delete(id);
    for (const wake of set) wake();
  }
}

/** Job ids joined by spaces into NOTIFY payloads of at most MAX_PAYLOAD_BYTES. */
function payloadsOf(ids: readonly string[]): string[] {
  const payloads: string[] = [];
  let cur = "";
  for (const id of ids) {
    if (cur.length + id.length + 1 > MAX_PAYLOAD_BYTES) {
      payloads.push(cur);
      cur = "";
    }
    cur = cur ? `${cur} ${id}` : id;
  }
  if (cur) payloads.push(cur);
  return payloads;
}

/** Ids finalised within `flushMs` go to the other processes as one NOTIFY statement. */
function createFinishedNotify(sql: Sql, flushMs: number) {
  let pending: string[] = [];
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    timer = null;
    const ids = pending;
    pending = [];
    // Lost: a waiter elsewhere learns it from the sweep (or at the end of its wait).
    sql`SELECT pg_notify(${FINISHED_CHANNEL}, p) FROM unnest(${payloadsOf(ids)}::text[]) AS p`.catch(() => {});
  };
  return {
    add(ids: readonly string[]): void {
      for (const id of ids) pending.push(id);
      timer ??= setTimeout(flush, flushMs);
    },
    stop(): void {
      if (timer) clearTimeout(timer);
    },
  };
}

/** The SWEEP_MS backstop: runs while anything is waited on. */
function createSweeper(sql: Sql, waiters: Waiters, sweepMs: number) {
  let timer: NodeJS.Timeout | null = null;
  const sweep = async () => {
    if (waiters.size === 0) return;
    const ids = [...waiters.keys()].slice(0, 10_000);
    try {
      const rows = await sql<{ id: string }[]>`SELECT id::text FROM jobs WHERE id = ANY(${ids}::uuid[]) AND finished_at IS NOT NULL`;
      wakeIds(waiters, rows.map((r) => r.id));
    } catch {
      // The database is down: the waits end at their time.
    }
  };
  return {
    start(): void {
      if (timer) return;
      timer = setInterval(() => void sweep(), sweepMs);
      timer.unref();
    },
    stopIfIdle(): void {
      if (waiters.size === 0 && timer) {
        clearInterval(timer);
        timer = null;
      }
    },
    stop(): void {
      if (timer) clearInterval(timer);
      timer = null;
    },
  };
}

/** One wait on `key`: see `wait` on FinishedWaits. */
function waitFinished(
  waiters: Waiters,
  sweeper: ReturnType<typeof createSweeper>,
  key: string,
  ms: number,
  signal: Cancel | undefined,
  closed: boolean,
): { done: Promise<boolean>; cancel: () => void } {
  let cancel = () => {};
  const done = new Promise<boolean>((resolve) => {
    if (closed) return resolve(false);
    const end = (finished: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      const set = waiters.get(key);
      set?.delete(wake);
      if (set?.size === 0) waiters.delete(key);
      sweeper.stopIfIdle();
      resolve(finished);
    };
    const wake = () => end(true);
    const onAbort = () => end(false);
    cancel = onAbort;
    const timer = setTimeout(onAbort, Math.max(0, ms));
    const set = waiters.get(key) ?? new Set();
    set.add(wake);
    waiters.set(key, set);
    signal?.addEventListener("abort", onAbort, { once: true });
    sweeper.start();
  });
  return { done, cancel };
}

/**
 * GET /v1/jobs/{id}?waitMs=: waits for jobs to finish. The services announce the jobs their
 * statements finalised after those committed (announce): local waiters wake at once, and the ids
 * go to every other process by one coalesced NOTIFY, heard on the notifier's single LISTEN
 * connection (onMessage). However many requests wait, the process holds one listener.
 */
export function createFinishedWaits(sql: Sql, o: { flushMs?: number; sweepMs?: number } = {}) {
  const waiters: Waiters = new Map();
  const notify = createFinishedNotify(sql, o.flushMs ?? FLUSH_MS);
  const sweeper = createSweeper(sql, waiters, o.sweepMs ?? SWEEP_MS);
  let closed = false;
  return {
    /** Jobs a committed statement moved to a terminal state. */
    announce(ids: readonly string[]): void {
      if (ids.length === 0 || closed) return;
      wakeIds(waiters, ids);
      notify.add(ids);
    },
    /** A NOTIFY on FINISHED_CHANNEL (this process's own come back too: waking twice is a no-op). */
    onMessage(payload: string): void {
      wakeIds(waiters, payload.split(" "));
    },
    /**
     * Resolves true when `id` is announced finished, false after `ms` or on abort. Register it
     * before reading the job: a finalisation that commits after the read is then announced to it.
     */
    wait(id: string, ms: number, signal?: Cancel): { done: Promise<boolean>; cancel: () => void } {
      return waitFinished(waiters, sweeper, id.toLowerCase(), ms, signal, closed);
    },
    /** Requests waiting now. */
    get waiting(): number {
      let n = 0;
      for (const s of waiters.values()) n += s.size;
      return n;
    },
    /** Shutdown: every wait ends now. */
    close(): void {
      closed = true;
      notify.stop();
      sweeper.stop();
      for (const set of [...waiters.values()]) for (const wake of [...set]) wake();
    },
  };
}

export type FinishedWaits = ReturnType<typeof createFinishedWaits>;
