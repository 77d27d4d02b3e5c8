import { drizzle, type PostgresJsDatabase } from "drizzle-orm/postgres-js";
import postgres from "postgres";
import * as schema from "./schema.js";

export type Sql = postgres.Sql;
/** A connection or an open transaction: every write accepts either. */
export type Queryable = postgres.Sql | postgres.TransactionSql;

export interface Database {
  sql: Sql;
  db: PostgresJsDatabase<typeof schema>;
  close: () => Promise<void>;
}

export function connect(url: string, opts: { max?: number; application?: string } = {}): Database {
  const options = {
    onnotice: () => {},
    idle_timeout: 30,
    connect_timeout: 5,
    connection: { application_name: opts.application ?? "jobline" },
  };
  const sql = postgres(url, { ...options, max: opts.max ?? 20, transform: postgres.camel });
  // drizzle rewrites its client's type parsers (timestamps stay strings), so it
  // gets a small pool of its own and the repositories keep real Dates.
  const drizzleClient = postgres(url, { ...options, max: 4 });
  const db = drizzle(drizzleClient, { schema });
  return {
    sql,
    db,
    close: async () => {
      await Promise.all([sql.end({ timeout: 5 }), drizzleClient.end({ timeout: 5 })]);
    },
  };
}
