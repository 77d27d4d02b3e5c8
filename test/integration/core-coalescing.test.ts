import { describe, expect, it } from "vitest";
import type { JobRow } from "../../src/repositories/jobs.js";
import { toNewJob } from "../../src/services/jobs.js";
import { createWorker } from "../../src/worker/inProcess.js";
import { until } from "../e2e/helpers/util.js";
import { claimDirect, useTestEnv } from "../helpers/app.js";

// Concurrent claims and completes of one process share statements (src/services/coalesce.ts).
// Sharing must not change what each caller is owed.

const setup = useTestEnv("core_coalescing");

const seed = (queue: string, n: number) =>
  setup.env.c.sql.begin((tx) =>
    setup.env.c.repos.jobs.insertMany(
      Array.from({ length: n }, (_, i) => toNewJob("acme", { queue, kind: "k", payload: { i } })),
      tx,
    ),
  );

const claim = (queue: string, workerId: string, max: number) => claimDirect(setup.env, queue, { workerId, max });

describe("coalesced claims", () => {
  it("64 concurrent polls share statements, yet each gets at most its max, its own worker id, and no job twice", async () => {
    await seed("co1", 300);
    const statements = await countCalls("claimNextFor", async () => {
      const got = await Promise.all(Array.from({ length: 64 }, (_, i) => claim("co1", `w${i}`, 1 + (i % 5))));
      const all = got.flat();
      expect(new Set(all.map((r) => r.id)).size).toBe(all.length);
      for (const [i, rows] of got.entries()) {
        expect(rows.length).toBeLessThanOrEqual(1 + (i % 5));
        for (const r of rows) expect(r.workerId).toBe(`w${i}`);
      }
      // 64 polls asking for 192 jobs out of 300: every poll is served in full.
      expect(all).toHaveLength(got.reduce((n, _, i) => n + 1 + (i % 5), 0));
      const inDb = await setup.env.c.sql<{ id: string; workerId: string }[]>`
        SELECT id, worker_id FROM jobs WHERE queue = 'co1' AND status = 'running'`;
      const byId = new Map(inDb.map((r) => [r.id, r.workerId]));
      for (const [i, rows] of got.entries()) for (const r of rows) expect(byId.get(r.id)).toBe(`w${i}`);
    });
    // Shared: far fewer claim statements than polls.
    expect(statements).toBeLessThan(64);
  });

  it("a poll whose client has already gone leases nothing, while the poll beside it is served", async () => {
    await seed("co2", 5);
    const gone = new AbortController();
    gone.abort();
    const [a, b] = await Promise.all([
      claim("co2", "live", 2),
      setup.env.c.services.jobs.claimNext({ queues: ["co2"], scope: null, workerId: "gone", leaseSeconds: 60, max: 3, waitMs: 0, signal: gone.signal }),
    ]);
    expect(a).toHaveLength(2);
    expect(b).toHaveLength(0);
    const [{ n }] = await setup.env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'co2' AND status = 'running'`;
    expect(n).toBe(2);
  });
});

describe("coalesced submits", () => {
  it("200 concurrent submits of two tenants share inserts, and each caller gets back exactly its own job", async () => {
    let rows: Array<JobRow | null> = [];
    const inserts = await countCalls("insertMany", async () => {
      const out = await Promise.all(
        Array.from({ length: 200 }, (_, i) =>
          setup.env.c.services.jobs.submit(i % 2 ? "acme" : "globex", { queue: "co6", kind: "k", payload: { i }, groupKey: `g${i % 3}` }),
        ),
      );
      rows = out.map((o) => (o.ok ? o.value : null));
    });
    for (const [i, r] of rows.entries()) {
      expect(r?.payload).toEqual({ i });
      expect(r?.tenant).toBe(i % 2 ? "acme" : "globex");
      expect(r?.groupKey).toBe(`g${i % 3}`);
    }
    expect(new Set(rows.map((r) => r!.id)).size).toBe(200);
    expect(inserts).toBeLessThan(200);
    const [{ n }] = await setup.env.c.sql<[{ n: number }]>`SELECT count(DISTINCT fair_tag)::int AS n FROM jobs WHERE queue = 'co6'`;
    // Each (tenant, group) got a run of tags of its own; jobs of one group never share a tag.
    const perGroup = await setup.env.c.sql<{ k: string; n: number; d: number }[]>`
      SELECT tenant || group_key AS k, count(*)::int AS n, count(DISTINCT fair_tag)::int AS d FROM jobs WHERE queue = 'co6' GROUP BY 1`;
    for (const g of perGroup) expect(g.d).toBe(g.n);
    expect(n).toBeGreaterThan(0);
  });
});

describe("coalesced completes", () => {
  it("the same complete sent twice at once, plus a wrong token, in one shared statement: one transition, two 200s, one 409", async () => {
    await seed("co3", 2);
    const [other, job] = await claim("co3", "w", 2);
    const svc = setup.env.c.services.jobs;
    const wrong = "00000000-0000-4000-8000-000000000000";
    // The first complete runs alone; the three calls made while it is in flight share the next statement.
    const [, x, y, z] = await Promise.all([
      svc.complete(other!.id, null, other!.leaseToken!, null),
      svc.complete(job!.id, null, wrong, { n: 0 }),
      svc.complete(job!.id, null, job!.leaseToken!, { n: 1 }),
      svc.complete(job!.id, null, job!.leaseToken!, { n: 1 }),
    ]);
    expect(x.ok).toBe(false);
    expect(y.ok && z.ok).toBe(true);
    // Exactly one of the two is the transition; the other is its replay.
    expect([y.ok && y.replay, z.ok && z.replay].sort()).toEqual([false, true]);
    const row = (await setup.env.c.repos.jobs.findById(job!.id, null)) as JobRow;
    expect(row.status).toBe("succeeded");
    expect(row.version).toBe(job!.version + 1);
  });

  it("a complete sent with upper-case id and token succeeds (PostgreSQL returns them lower-case)", async () => {
    await seed("co7", 1);
    const [job] = await claim("co7", "w", 1);
    const out = await setup.env.c.services.jobs.complete(job!.id.toUpperCase(), null, job!.leaseToken!.toUpperCase(), { ok: 1 });
    expect(out.ok && !out.replay).toBe(true);
    const again = await setup.env.c.services.jobs.complete(job!.id.toUpperCase(), null, job!.leaseToken!.toUpperCase(), { ok: 1 });
    expect(again.ok && again.replay).toBe(true);
  });

  it("an unstorable result is refused on its own and does not fail the others sharing the statement", async () => {
    await seed("co4", 3);
    const rows = await claim("co4", "w", 3);
    const items = rows.map((r, i) => ({
      id: r.id,
      leaseToken: r.leaseToken!,
      result: i === 1 ? { big: 10n } : i === 2 ? { s: "a\u0000b" } : { ok: true },
    }));
    const out = await setup.env.c.services.jobs.completeMany(null, items);
    expect(out.map((o) => o.outcome.ok)).toEqual([true, false, false]);
    expect(out[1]!.outcome.ok ? null : out[1]!.outcome.error).toBe("invalid");
    const statuses = await Promise.all(rows.map(async (r) => (await setup.env.c.repos.jobs.findById(r.id, null))!.status));
    expect(statuses).toEqual(["succeeded", "running", "running"]);
  });

  it("an in-process handler whose result cannot be stored fails that job, and the worker's other jobs complete", async () => {
    await seed("co5", 20);
    const w = createWorker({
      container: setup.env.c,
      queues: ["co5"],
      concurrency: 10,
      waitMs: 200,
      handlers: { k: async (job) => ((job.payload as { i: number }).i === 7 ? { n: 1n } : { i: (job.payload as { i: number }).i }) },
    });
    try {
      await until("all 20 recorded", () => (w.stats.succeeded + w.stats.failed === 20 ? true : undefined), 20_000);
    } finally {
      await w.stop(5000);
    }
    const rows = await setup.env.c.sql<{ status: string; lastError: { code?: string } | null; payload: { i: number } }[]>`
      SELECT status, last_error, payload FROM jobs WHERE queue = 'co5'`;
    const bad = rows.filter((r) => r.payload.i === 7);
    expect(bad.map((r) => [r.status, r.lastError?.code])).toEqual([["failed", "result_not_storable"]]);
    expect(rows.filter((r) => r.status === "succeeded")).toHaveLength(19);
  });
});

/** Calls of one repository function made while `f` runs (it still runs them for real, on the real database). */
async function countCalls(name: "claimNextFor" | "insertMany", f: () => Promise<void>): Promise<number> {
  const repo = setup.env.c.repos.jobs as Record<string, unknown>;
  const real = repo[name] as (...args: unknown[]) => unknown;
  let n = 0;
  repo[name] = (...args: unknown[]) => {
    n++;
    return real(...args);
  };
  try {
    await f();
  } finally {
    repo[name] = real;
  }
  return n;
}

