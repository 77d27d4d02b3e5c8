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

/**
 * GET /v1/jobs/{id}?waitMs=: waits for jobs to finish. The services announce the jobs their
 * statements finalised after those committed (announce): local waiters wake at once, and the ids
 * go to every other process by one coalesced NOTIFY, heard on the notifier's single LISTEN
 * connection (onMessage). However many requests wait, the process holds one listener.
 */
export function createFinishedWaits(sql: Sql, o: { flushMs?: number; sweepMs?: number } = {}) {
  const waiters = new Map<string, Set<() => void>>();
  let pending: string[] = [];
  let flushTimer: NodeJS.Timeout | null = null;
  let sweepTimer: NodeJS.Timeout | null = null;
  let closed = false;

  const wakeIds = (ids: Iterable<string>) => {
    for (const id of ids) {
      const set = waiters.get(id);
      if (!set) continue;
      waiters.delete(id);
      for (const wake of set) wake();
    }
  };

  const flush = () => {
    flushTimer = null;
    const ids = pending;
    pending = [];
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
    // Lost: a waiter elsewhere learns it from the sweep (or at the end of its wait).
    sql`SELECT pg_notify(${FINISHED_CHANNEL}, p) FROM unnest(${payloads}::text[]) AS p`.catch(() => {});
  };

  const sweep = async () => {
    if (waiters.size === 0) return;
    const ids = [...waiters.keys()].slice(0, 10_000);
    try {
      const rows = await sql<{ id: string }[]>`SELECT id::text FROM jobs WHERE id = ANY(${ids}::uuid[]) AND finished_at IS NOT NULL`;
      wakeIds(rows.map((r) => r.id));
    } catch {
      // The database is down: the waits end at their time.
    }
  };

  const stopSweepIfIdle = () => {
    if (waiters.size === 0 && sweepTimer) {
      clearInterval(sweepTimer);
      sweepTimer = null;
    }
  };

  return {
    /** Jobs a committed statement moved to a terminal state. */
    announce(ids: readonly string[]): void {
      if (ids.length === 0 || closed) return;
      wakeIds(ids);
      for (const id of ids) pending.push(id);
      flushTimer ??= setTimeout(flush, o.flushMs ?? FLUSH_MS);
    },
    /** A NOTIFY on FINISHED_CHANNEL (this process's own come back too: waking twice is a no-op). */
    onMessage(payload: string): void {
      wakeIds(payload.split(" "));
    },
    /**
     * Resolves true when `id` is announced finished, false after `ms` or on abort. Register it
     * before reading the job: a finalisation that commits after the read is then announced to it.
     */
    wait(id: string, ms: number, signal?: Cancel): { done: Promise<boolean>; cancel: () => void } {
      const key = id.toLowerCase();
      let cancel = () => {};
      const done = new Promise<boolean>((resolve) => {
        if (closed) return resolve(false);
        const end = (finished: boolean) => {
          clearTimeout(timer);
          signal?.removeEventListener("abort", onAbort);
          const set = waiters.get(key);
          set?.delete(wake);
          if (set?.size === 0) waiters.delete(key);
          stopSweepIfIdle();
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
        if (!sweepTimer) {
          sweepTimer = setInterval(() => void sweep(), o.sweepMs ?? SWEEP_MS);
          sweepTimer.unref();
        }
      });
      return { done, cancel };
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
      if (flushTimer) clearTimeout(flushTimer);
      if (sweepTimer) clearInterval(sweepTimer);
      sweepTimer = null;
      for (const set of [...waiters.values()]) for (const wake of [...set]) wake();
    },
  };
}

export type FinishedWaits = ReturnType<typeof createFinishedWaits>;
