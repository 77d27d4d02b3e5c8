import postgres from "postgres";
import { rememberLast } from "../domain/memo.js";
import { createGate, type Gate } from "./gate.js";

export type Sql = postgres.Sql;
/** A connection or an open transaction: every write accepts either. */
export type Queryable = postgres.Sql | postgres.TransactionSql;

/**
 * The driver's error behind `e`: drizzle (the migrator) wraps it in a
 * DrizzleQueryError whose `cause` it is, and a wrapper's own message and code say nothing of
 * what went wrong. Judged by the wrapper, a refused connection was a 500, not a 503.
 */
export const driverError = (e: unknown): unknown => {
  let cur = e;
  for (let depth = 0; depth < 5; depth++) {
    const c = cur as { code?: unknown; cause?: unknown } | null;
    if (typeof c !== "object" || c === null || c.code !== undefined || c.cause === undefined) return cur;
    cur = c.cause;
  }
  return cur;
};

export interface Database {
  sql: Sql;
  /** Fails statements fast while PostgreSQL is unreachable (src/db/gate.ts). */
  gate: Gate;
  close: () => Promise<void>;
}

/**
 * snake_case columns ↔ camelCase fields, and nothing else: `postgres.camel`
 * would also rewrite the keys inside jsonb values (a tenant's payload).
 */
export const camelColumns = { column: { from: postgres.toCamel, to: postgres.fromCamel } };

/**
 * timestamptz → Date, remembering the last few texts. A claim's rows share most of their
 * timestamps (one now() per statement, one per submit), and parsing PostgreSQL's
 * "2026-01-02 03:04:05.678+00" falls back to V8's slow legacy date parser. Each call
 * returns a Date of its own.
 */
const msOf = rememberLast(4, (text: string) => new Date(text).getTime());
export const parseTimestamptz = (text: string): Date => new Date(msOf(text));
const timestamptz = {
  to: 1184,
  from: [1184],
  serialize: (x: Date | string | number) => (x instanceof Date ? x : new Date(x)).toISOString(),
  parse: parseTimestamptz,
};

/**
 * Seconds before a closed connection tries again. postgres.js's default grows to 20 s, which
 * delayed recovery by as much after PostgreSQL returned; the gate keeps statements from
 * piling onto a pool that cannot connect, so short waits do not hammer the server.
 */
const reconnectDelay = (retries: number) => (0.5 + Math.random() / 2) * Math.min(0.01 * 2 ** retries, 0.5);

export function connect(url: string, opts: { max?: number; application?: string; acquireTimeoutMs?: number } = {}): Database {
  const acquireTimeoutMs = opts.acquireTimeoutMs ?? 2000;
  const options = {
    onnotice: () => {},
    idle_timeout: 30,
    // Not the acquire bound: a loaded PostgreSQL may take seconds to accept, and a timed-out
    // connect trips the gate. An address that drops packets trips it after these 5 s.
    connect_timeout: 5,
    backoff: reconnectDelay,
    connection: { application_name: opts.application ?? "jobline" },
  };
  const sql = postgres(url, { ...options, max: opts.max ?? 20, transform: camelColumns, types: { timestamptz } });
  // One pool per process: drizzle is the schema and migration tool only (db/migrate.ts).
  const gate = createGate({ acquireTimeoutMs });
  gate.install(sql);
  return {
    sql,
    gate,
    close: async () => {
      gate.close();
      await sql.end({ timeout: 5 });
    },
  };
}

/** A client that only holds the LISTEN of a process (the notifier replaces it when it goes deaf). */
export function listenClient(url: string, application = "jobline"): Sql {
  return postgres(url, { max: 1, onnotice: () => {}, connect_timeout: 5, connection: { application_name: `${application}:listen` } });
}
