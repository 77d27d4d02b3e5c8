import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate as drizzleMigrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HELD_TAG } from "../../src/db/schema.js";
import { MIGRATIONS_DIR, migrate } from "../../src/db/migrate.js";
import { adminUrl, urlFor } from "../helpers/db.js";

// An upgrade runs on a database that has data and traffic. This builds one at an older
// release's schema (migrations 0000–0001), writes to it, and applies the rest while a
// submit is in flight.

const name = `upgrade_${process.pid}_${Date.now()}`;
let sql: postgres.Sql;
let oldDir: string;

/** The migrations folder as the release with the first `n` migrations shipped it. */
function migrationsUpTo(n: number): string {
  const dir = mkdtempSync(join(tmpdir(), "jobline-mig-"));
  cpSync(MIGRATIONS_DIR, dir, { recursive: true });
  const journalPath = join(dir, "meta", "_journal.json");
  const journal = JSON.parse(readFileSync(journalPath, "utf8")) as { entries: unknown[] };
  journal.entries = journal.entries.slice(0, n);
  writeFileSync(journalPath, JSON.stringify(journal));
  return dir;
}

beforeAll(async () => {
  const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name} TEMPLATE template0`);
  await admin.end();
  sql = postgres(urlFor(name), { max: 4, onnotice: () => {} });
  oldDir = migrationsUpTo(2);
  await drizzleMigrate(drizzle(sql), { migrationsFolder: oldDir });
});
afterAll(async () => {
  await sql?.end({ timeout: 5 });
  rmSync(oldDir, { recursive: true, force: true });
  const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`).catch(() => {});
  await admin.end();
});

describe("upgrading a live database", () => {
  it("a submit in flight during the upgrade is listed; a poisoned fairness group is repaired", async () => {
    await sql`
      INSERT INTO jobs (tenant, queue, kind, payload)
      SELECT 'acme', 'q', 'k', '{}'::jsonb FROM generate_series(1, 100)`;
    // What an old replica could have written once held jobs existed (see schema.ts).
    await sql`INSERT INTO job_groups (queue, fair_key, last_tag) VALUES ('q', 'acme:G', ${HELD_TAG + 3})`;

    // A submit whose transaction is open when the upgrade starts, and commits while it runs.
    const inFlight = sql.reserve();
    const tx = await inFlight;
    await tx`BEGIN`;
    const [late] = await tx<{ id: string }[]>`INSERT INTO jobs (tenant, queue, kind, payload) VALUES ('acme', 'q', 'k', '{}') RETURNING id`;
    const upgrade = migrate(urlFor(name));
    // Commit only once the upgrade is waiting on this transaction, i.e. inside its own.
    for (let i = 0; ; i++) {
      const waiting = await sql`
        SELECT 1 FROM pg_stat_activity WHERE datname = ${name} AND wait_event_type = 'Lock'`;
      if (waiting.length > 0) break;
      if (i > 500) throw new Error("the upgrade never waited for the in-flight submit");
      await new Promise((r) => setTimeout(r, 10));
    }
    await tx`COMMIT`;
    tx.release();
    await upgrade;

    const [r] = await sql<{ jobs: number; listed: number; late: number }[]>`
      SELECT (SELECT count(*) FROM jobs)::int AS jobs, (SELECT count(*) FROM job_list)::int AS listed,
             (SELECT count(*) FROM job_list WHERE id = ${late!.id})::int AS late`;
    expect(r).toEqual({ jobs: 101, listed: 101, late: 1 });
    const [g] = await sql<{ tag: number }[]>`SELECT last_tag::float8 AS tag FROM job_groups WHERE fair_key = 'acme:G'`;
    expect(g!.tag).toBeLessThan(HELD_TAG);
  });
});
