import type postgres from "postgres";

/**
 * Raised by the gate for a statement it never let reach a connection: it changed nothing.
 * `isDbUnavailable` knows its code.
 */
export class DbUnavailableError extends Error {
  readonly code = "DB_UNAVAILABLE";
}

/** The parts of a postgres.js Query the gate uses (set by the driver; `state` once it is written to a connection). */
interface PendingQuery {
  state: unknown;
  reject: (e: unknown) => void;
  cancel: () => unknown;
  then: (ok: () => void, fail: (e: unknown) => void) => unknown;
}

/** Whether a failed statement had been written to a connection, by its error (the driver's own, not a wrapper). */
const sentWhenFailed = new WeakMap<object, boolean>();

/** Records whether the statement that failed with `e` had been sent; once one was, the error stays "sent". */
export function markSent(e: unknown, sent: boolean) {
  if (typeof e !== "object" || e === null) return;
  if (!sentWhenFailed.get(e)) sentWhenFailed.set(e, sent);
}

/** true: the failed statement had been sent (its outcome may be unknown); false: it never was; undefined: not known. */
export const wasSent = (e: unknown): boolean | undefined =>
  typeof e === "object" && e !== null ? sentWhenFailed.get(e) : undefined;

/** A connection could not be opened at all: PostgreSQL is down, starting or unreachable. */
const CONNECT_FAILURE = /^(ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|CONNECT_TIMEOUT|57P03)$/;
/** Lost connections (the statement may have run) and refused ones (it did not). */
const CONNECTION_LOST = /^(CONNECTION_CLOSED|CONNECTION_DESTROYED|ECONNRESET|EPIPE|ECONNABORTED|ENOTCONN|57P0[12]|08\d\d\d)$/;

export interface GateOptions {
  /** Longest wait for a connection, while connecting fails, before the statement is refused (503, nothing changed). */
  acquireTimeoutMs: number;
  /** While failing fast, one statement is let through this often to see whether PostgreSQL is back. */
  probeEveryMs?: number;
  onChange?: (down: boolean) => void;
}

/**
 * A circuit breaker and an acquire deadline in front of postgres.js pools. The driver queues
 * statements without bound while it cannot connect and waits up to 20 s between attempts, so
 * during an outage requests hung. Here, once a connect has failed: a statement that waited
 * `acquireTimeoutMs` without reaching a connection is taken out of the queue and refused, every
 * new statement is refused at once, except one per `probeEveryMs` let through as a probe,
 * whose success ends the outage. Installed through the `options.gate` hook that
 * patches/postgres+3.4.9.patch adds to the pool's query handler.
 */
export function createGate(o: GateOptions) {
  const probeEveryMs = o.probeEveryMs ?? 250;
  const waiting = new Map<PendingQuery, number>();
  let sweeper: NodeJS.Timeout | null = null;
  let down = false;
  let probeAt = 0;

  const setDown = (d: boolean) => {
    if (down === d) return;
    down = d;
    o.onChange?.(d);
  };

  function sweep() {
    const now = performance.now();
    for (const [q, since] of waiting) {
      if (q.state !== null) waiting.delete(q);
      // Only while connecting fails: on a healthy but busy pool a long wait is load, not an outage.
      else if (down && now - since >= o.acquireTimeoutMs) {
        waiting.delete(q);
        // First the answer, then out of the driver's queue so it can never run later.
        q.reject(new DbUnavailableError(`no database connection within ${o.acquireTimeoutMs} ms`));
        q.cancel();
      }
    }
    if (waiting.size === 0 && sweeper) {
      clearInterval(sweeper);
      sweeper = null;
    }
  }

  function gate(q: PendingQuery): boolean {
    const now = performance.now();
    if (down) {
      if (now < probeAt) {
        q.reject(new DbUnavailableError("database unavailable"));
        return true;
      }
      probeAt = now + probeEveryMs;
    }
    waiting.set(q, now);
    sweeper ??= setInterval(sweep, Math.max(10, Math.min(250, o.acquireTimeoutMs / 4))).unref();
    q.then(
      () => {
        waiting.delete(q);
        setDown(false);
      },
      (e: unknown) => {
        waiting.delete(q);
        const code = String((e as { code?: unknown } | null)?.code ?? "");
        if (CONNECT_FAILURE.test(code)) {
          probeAt = performance.now() + probeEveryMs;
          setDown(true);
        } else if (!(e instanceof DbUnavailableError)) setDown(false);
        if (CONNECTION_LOST.test(code) || CONNECT_FAILURE.test(code)) markSent(e, q.state !== null);
      },
    );
    return false;
  }

  return {
    /** Puts this gate in front of a pool's statements (not those inside a transaction, which hold their connection). */
    install(sql: postgres.Sql) {
      (sql.options as { gate?: (q: PendingQuery) => boolean }).gate = gate;
    },
    get down() {
      return down;
    },
    close() {
      if (sweeper) clearInterval(sweeper);
      sweeper = null;
    },
  };
}

export type Gate = ReturnType<typeof createGate>;
