import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { drizzle } from "drizzle-orm/postgres-js";
import { migrate as drizzleMigrate } from "drizzle-orm/postgres-js/migrator";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HELD_TAG, PREPARING_TAG } from "../../src/db/schema.js";
import { camelColumns } from "../../src/db/client.js";
import { MIGRATIONS_DIR, migrate } from "../../src/db/migrate.js";
import { CLOCK_KEY, fairKey, jobsRepository } from "../../src/repositories/jobs.js";
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

const open = async () => {
  const tx = await sql.reserve();
  await tx`BEGIN`;
  return tx;
};

describe("upgrading a live database", () => {
  it("submits in flight during the upgrade are listed; poisoned fairness rows and jobs are repaired", async () => {
    await sql`
      INSERT INTO jobs (tenant, queue, kind, payload, fair_tag)
      SELECT 'acme', 'q', 'k', '{}'::jsonb, n FROM generate_series(1, 100) n`;
    // What an old replica could have written once held jobs existed (see schema.ts): a group
    // and the queue's clock at or above the held tag, and a job tagged from that group.
    await sql`
      INSERT INTO job_groups (queue, fair_key, last_tag) VALUES
        ('q', ${fairKey("acme", "A")}, 100), ('q', ${fairKey("acme", "G")}, ${HELD_TAG + 3}), ('q', ${CLOCK_KEY}, ${HELD_TAG + 3})`;
    const [poisoned] = await sql<{ id: string }[]>`
      INSERT INTO jobs (tenant, queue, kind, payload, group_key, fair_tag) VALUES ('acme', 'q', 'k', '{}', 'G', ${HELD_TAG + 3}) RETURNING id`;

    // An open batch with a queued job: after the upgrade it carries the open-batch tag.
    const [openBatch] = await sql<{ id: string }[]>`
      INSERT INTO batches (tenant, status, total, remaining) VALUES ('acme', 'preparing', 1, 1) RETURNING id`;
    await sql`INSERT INTO jobs (tenant, queue, kind, payload, batch_id) VALUES ('acme', 'q', 'k', '{}', ${openBatch!.id})`;
    // A sealed batch's queued job keeps its tag.
    const [sealedBatch] = await sql<{ id: string }[]>`
      INSERT INTO batches (tenant, status, total, remaining, sealed_at) VALUES ('acme', 'pending', 1, 1, now()) RETURNING id`;
    await sql`INSERT INTO jobs (tenant, queue, kind, payload, batch_id, fair_tag) VALUES ('acme', 'q', 'k', '{}', ${sealedBatch!.id}, 7)`;

    // Two submits whose transactions are open when the upgrade starts: one has written
    // jobs already, the other has only read it (a batch create reads virtual time first).
    const writer = await open();
    const [late] = await writer<{ id: string }[]>`INSERT INTO jobs (tenant, queue, kind, payload) VALUES ('acme', 'q', 'k', '{}') RETURNING id`;
    const reader = await open();
    await reader`SELECT count(*) FROM jobs WHERE queue = 'q'`;
    const pidOf = async (tx: postgres.ReservedSql) => (await tx<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]!.pid;
    const readerPid = await pidOf(reader);
    const writerPid = await pidOf(writer);
    /** Waits until the upgrade's transaction is blocked by these backends (`only`: by no other). */
    const blockedBy = async (pids: number[], only: boolean) => {
      for (let i = 0; ; i++) {
        const rows = await sql<{ by: number[] }[]>`
          SELECT pg_blocking_pids(pid) AS by FROM pg_stat_activity
          WHERE datname = ${name} AND wait_event_type = 'Lock' AND pid NOT IN (${readerPid}, ${writerPid})`;
        if (rows.some((r) => pids.every((p) => r.by.includes(p)) && (!only || r.by.length === pids.length))) return;
        if (i > 1000) throw new Error(`the upgrade was never blocked by ${pids.join(", ")}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    };
    const upgrade = migrate(urlFor(name));
    await blockedBy([writerPid], false);
    await writer`COMMIT`;
    writer.release();
    // Now the upgrade waits for the reader alone, and the reader writes. Had the upgrade
    // taken a weaker lock first and upgraded it later (before the backfill, then for DROP
    // INDEX), this was a deadlock: the upgrade or this submit would have been rolled back.
    await blockedBy([readerPid], true);
    const [later] = await reader<{ id: string }[]>`INSERT INTO jobs (tenant, queue, kind, payload) VALUES ('acme', 'q', 'k', '{}') RETURNING id`;
    await reader`COMMIT`;
    reader.release();
    await upgrade;

    const [r] = await sql<{ jobs: number; listed: number; late: number }[]>`
      SELECT (SELECT count(*) FROM jobs)::int AS jobs, (SELECT count(*) FROM job_list)::int AS listed,
             (SELECT count(*) FROM job_list WHERE id IN (${late!.id}, ${later!.id}))::int AS late`;
    expect(r).toEqual({ jobs: 105, listed: 105, late: 2 });

    // The poisoned rows restart at the highest sound tag of their queue: the clock stays
    // above every tag handed out, so a drained queue lets no newcomer's flood jump ahead.
    const groups = await sql<{ key: string; tag: number }[]>`
      SELECT fair_key AS key, last_tag::float8 AS tag FROM job_groups WHERE queue = 'q' ORDER BY fair_key`;
    expect(Object.fromEntries(groups.map((g) => [g.key, g.tag]))).toEqual({
      [CLOCK_KEY]: 100,
      [fairKey("acme", "A")]: 100,
      [fairKey("acme", "G")]: 100,
    });
    const [ob] = await sql<{ tag: number }[]>`SELECT fair_tag::float8 AS tag FROM jobs WHERE batch_id = ${openBatch!.id}`;
    expect(ob!.tag).toBe(PREPARING_TAG);
    const [sb] = await sql<{ tag: number }[]>`SELECT fair_tag::float8 AS tag FROM jobs WHERE batch_id = ${sealedBatch!.id}`;
    expect(sb!.tag).toBe(7);
    // The job tagged from the poisoned group is held, and the next promotion tags it soundly.
    const app = postgres(urlFor(name), { max: 1, onnotice: () => {}, transform: camelColumns });
    const promoted = await app.begin((tx) => jobsRepository(app).promoteDue(10, tx)).finally(() => app.end());
    expect(promoted.promoted).toBe(1);
    const [j] = await sql<{ tag: number }[]>`SELECT fair_tag::float8 AS tag FROM jobs WHERE id = ${poisoned!.id}`;
    expect(j!.tag).toBeGreaterThan(100);
    expect(j!.tag).toBeLessThan(HELD_TAG);
  });
});
