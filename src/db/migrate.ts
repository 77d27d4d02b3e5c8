import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate as drizzleMigrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { describeError } from "../errors.js";
import { driverError } from "./client.js";

export const MIGRATIONS_DIR = join(dirname(fileURLToPath(import.meta.url)), "..", "..", "drizzle");
const LOCK_KEY = 7_412_030_001;

/**
 * Applies drizzle/ migrations under an advisory lock, so several `serve` and
 * `worker` processes starting at once do not race each other.
 */
export async function migrate(url: string): Promise<void> {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  try {
    // The first statement of every command (start, serve, worker, migrate, keys create): a failure
    // here names the server, not only the driver's "connect ECONNREFUSED".
    await sql`SELECT pg_advisory_lock(${LOCK_KEY})`.catch((e: unknown) => {
      throw new Error(`cannot connect to PostgreSQL at ${redactUrl(url)}: ${describeError(e)}`, { cause: e });
    });
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await drizzleMigrate(drizzle(sql), { migrationsFolder: MIGRATIONS_DIR });
          break;
        } catch (e) {
          // On a live database an upgrade can be chosen as a deadlock victim by a running
          // release's transaction. All pending migrations run in one transaction, so the
          // victim changed nothing and running them again is safe.
          if (attempt >= 5 || !isDeadlock(e)) throw e;
          await new Promise((r) => setTimeout(r, 200 * attempt));
        }
      }
    } finally {
      await sql`SELECT pg_advisory_unlock(${LOCK_KEY})`;
    }
  } finally {
    await sql.end({ timeout: 5 });
  }
}

/** A database URL without its password, for messages. */
export function redactUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = "***";
    return u.toString();
  } catch {
    return "(DATABASE_URL, not a valid URL)";
  }
}

const isDeadlock = (e: unknown): boolean => (driverError(e) as { code?: unknown } | null)?.code === "40P01";

export function expectedMigrationCount(): number {
  const journal = JSON.parse(readFileSync(join(MIGRATIONS_DIR, "meta", "_journal.json"), "utf8")) as {
    entries: unknown[];
  };
  return journal.entries.length;
}

/** For /readyz: true when every migration in drizzle/ is recorded as applied. */
export async function migrationsApplied(sql: postgres.Sql): Promise<boolean> {
  // A missing table means "not migrated"; any other error (database down) propagates.
  const rows = await sql<{ n: number }[]>`
    SELECT count(*)::int AS n FROM drizzle.__drizzle_migrations`.catch((e: { code?: string }) => {
    if (e.code === "42P01" || e.code === "3F000") return [{ n: -1 }];
    throw e;
  });
  return (rows[0]?.n ?? -1) >= expectedMigrationCount();
}
