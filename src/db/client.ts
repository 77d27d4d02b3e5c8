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
  const sql = postgres(url, {
    max: opts.max ?? 20,
    transform: postgres.camel,
    onnotice: () => {},
    idle_timeout: 30,
    connect_timeout: 5,
    connection: { application_name: opts.application ?? "jobline" },
  });
  const db = drizzle(sql, { schema });
  return { sql, db, close: () => sql.end({ timeout: 5 }) };
}
