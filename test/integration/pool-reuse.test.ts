import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { connect, type Database } from "../../src/db/client.js";
import { adminUrl } from "../helpers/db.js";

// PostgreSQL plans a prepared statement afresh on each of its first five runs on every
// connection. A pool that handed out its idle connections in turn (postgres.js's order) made
// every statement pay those plans on all of them; patches/postgres+3.4.9.patch hands out the
// one used last, so a quiet stream of statements stays on one warm connection
// (docs/performance-notes.md, "Plans per connection").
describe("the connection pool", () => {
  let db: Database;
  beforeAll(() => {
    db = connect(adminUrl(), { max: 6, application: "pool-reuse" });
  });
  afterAll(() => db.sql.end());

  it("runs one statement after another on the connection used last, not on each idle one in turn", async () => {
    // Six connections open and idle.
    const opened = await Promise.all(Array.from({ length: 6 }, () => db.sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid, pg_sleep(0.05)`));
    expect(new Set(opened.map((r) => r[0]!.pid)).size).toBe(6);
    const pids: number[] = [];
    for (let i = 0; i < 30; i++) pids.push((await db.sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`)[0]!.pid);
    expect(new Set(pids).size).toBe(1);
  });

  it("still opens more connections under concurrent load", async () => {
    const rows = await Promise.all(Array.from({ length: 6 }, () => db.sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid, pg_sleep(0.05)`));
    expect(new Set(rows.map((r) => r[0]!.pid)).size).toBe(6);
  });
});
