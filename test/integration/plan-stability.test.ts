import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { camelColumns } from "../../src/db/client.js";
import { HELD_TAG } from "../../src/db/schema.js";
import { jobsRepository } from "../../src/repositories/jobs.js";
import { toNewJob } from "../../src/services/jobs.js";
import { createTestEnv, type TestEnv } from "../helpers/app.js";

// A batch acknowledgement must cost about one primary-key probe per item whatever the
// statistics say. Statistics taken while every job was still queued rate "status = running"
// at one row; the planner then paired a scan of jobs with the items in a nested loop
// (250,000 comparisons for 500 items) and throughput fell to a fifth after each ANALYZE.
// Counted in rows, not milliseconds, so the test is as exact on a slow machine as on a fast one.

let env: TestEnv;
let traced: postgres.Sql;
let last: { query: string; params: unknown[] } | null = null;
let lastClaim: { query: string; params: unknown[] } | null = null;
let lastPromotion: { query: string; params: unknown[] } | null = null;
let lastOldest: { query: string; params: unknown[] } | null = null;
let lastRetag: { query: string; params: unknown[] } | null = null;
let lastClaimById: { query: string; params: unknown[] } | null = null;
let lastReap: { query: string; params: unknown[] } | null = null;
beforeAll(async () => {
  env = await createTestEnv("plan_stability");
  traced = postgres(env.url, {
    max: 1,
    transform: camelColumns,
    onnotice: () => {},
    debug: (_conn, query, params) => {
      if (query.startsWith("PREPARE")) return;
      if (query.includes("completed_items")) last = { query, params: params as unknown[] };
      if (query.includes("claimable AS (")) lastClaim = { query, params: params as unknown[] };
      if (query.includes("ORDER BY run_at, id")) lastPromotion = { query, params: params as unknown[] };
      if (query.includes(") due GROUP BY tenant, queue")) lastOldest = { query, params: params as unknown[] };
      if (query.includes("SET fair_tag = t.tag")) lastRetag = { query, params: params as unknown[] };
      if (query.includes("verdict AS (")) lastClaimById = { query, params: params as unknown[] };
      if (query.includes("'execution timed out'")) lastReap = { query, params: params as unknown[] };
    },
  });
});
afterAll(async () => {
  await traced?.end();
  await env?.close();
});

interface PlanNode {
  "Node Type": string;
  "Relation Name"?: string;
  "Actual Rows"?: number;
  "Actual Loops"?: number;
  "Rows Removed by Filter"?: number;
  "Rows Removed by Join Filter"?: number;
  Plans?: PlanNode[];
}

/** Rows the plan looked at in jobs and in batches, and rows it compared and threw away in joins. */
function work(node: PlanNode, acc = { jobsRows: 0, batchesRows: 0, joinFiltered: 0 }) {
  const loops = node["Actual Loops"] ?? 1;
  const read = ((node["Actual Rows"] ?? 0) + (node["Rows Removed by Filter"] ?? 0)) * loops;
  if (node["Node Type"] !== "ModifyTable" && node["Relation Name"] === "jobs") acc.jobsRows += read;
  if (node["Node Type"] !== "ModifyTable" && node["Relation Name"] === "batches") acc.batchesRows += read;
  acc.joinFiltered += (node["Rows Removed by Join Filter"] ?? 0) * loops;
  for (const child of node.Plans ?? []) work(child, acc);
  return acc;
}

/** Runs fn in a transaction that is always rolled back; fn's own errors still fail the test. */
async function rolledBack<T>(fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  let out: T | undefined;
  const done = new Error("rollback");
  await traced
    .begin(async (tx) => {
      out = await fn(tx);
      throw done;
    })
    .catch((e: unknown) => {
      if (e !== done) throw e;
    });
  return out as T;
}

const seed = (queue: string, n: number) =>
  env.c.sql.begin((tx) =>
    env.c.repos.jobs.insertMany(
      Array.from({ length: n }, (_, i) => toNewJob("acme", { queue, kind: "k", payload: { i } })),
      tx,
    ),
  );

const PLAN_MODES = ["force_generic_plan", "force_custom_plan"] as const;

/**
 * Runs `fn` on a session of its own (so its prepared statements are fn's alone) and returns
 * how often PostgreSQL planned the statements whose text matches `pattern` (LIKE).
 */
async function plansOnOwnSession(pattern: string, fn: (own: postgres.Sql, repo: ReturnType<typeof jobsRepository>) => Promise<void>) {
  const own = postgres(env.url, { max: 1, transform: camelColumns, onnotice: () => {} });
  try {
    await fn(own, jobsRepository(own));
    return await own<{ genericPlans: number; customPlans: number }[]>`
      SELECT generic_plans::int, custom_plans::int FROM pg_prepared_statements
      WHERE statement LIKE ${pattern} AND statement NOT LIKE '%pg_prepared_statements%'`;
  } finally {
    await own.end();
  }
}
/** 20 ordinary jobs behind whatever `queue` holds already, fresh statistics, and a claim of one. */
async function claimOneBehind(queue: string) {
  await seed(queue, 20);
  await env.c.sql`ANALYZE jobs`;
  await jobsRepository(traced).claimNext({ queues: [queue], tenant: null, workerId: "w", leaseSeconds: 60, max: 1 });
}
/** The statement as postgres.js sent it, prepared server-side and run with the given plan mode, rolled back. */
async function explain(stmt: { query: string; params: unknown[] }, mode: "force_generic_plan" | "force_custom_plan") {
  const plan = await rolledBack(async (tx) => {
    await tx.unsafe(`SET LOCAL plan_cache_mode = ${mode}`);
    await tx.unsafe(`PREPARE ack AS ${stmt.query}`).simple();
    const [{ types }] = await tx.unsafe<[{ types: string[] }]>(
      "SELECT parameter_types::text[] AS types FROM pg_prepared_statements WHERE name = 'ack'",
    );
    // EXPLAIN cannot take parameters, so the values go in as literals, quoted by PostgreSQL.
    const [{ cmd }] =
      types.length === 0
        ? [{ cmd: "EXECUTE ack" }]
        : await tx.unsafe<[{ cmd: string }]>(
            `SELECT format('EXECUTE ack(${types.map((t) => `%L::${t}`).join(", ")})', ${types.map((t, i) => `$${i + 1}::${t}`).join(", ")}) AS cmd`,
            stmt.params as never[],
          );
    const [row] = await tx.unsafe(`EXPLAIN (ANALYZE, FORMAT JSON) ${cmd}`).simple();
    await tx.unsafe("DEALLOCATE ack").simple();
    return (Object.values(row as object)[0] as [{ Plan: PlanNode }])[0].Plan;
  });
  return work(plan);
}

describe("batch complete plan", () => {
  it("probes one row per item, with or without a generic plan, when statistics say no job is running", async () => {
    // First in the file, so its table holds only these jobs; gone afterwards, pass or fail, so the
    // other tests' plans do not see them.
    try {
      const repo = jobsRepository(traced);
      // Large enough that one scan of jobs looks cheaper than 500 probes: a plain join of jobs
      // and the items then compares every running row with every item (1,249,500 comparisons).
      await seed("plan", 30000);
      await env.c.sql`ANALYZE jobs`;
      // 2,500 running jobs the statistics do not know about; the last 500 are acknowledged.
      let claimed: Awaited<ReturnType<typeof repo.claimNext>> = [];
      for (let i = 0; i < 5; i++) {
        claimed = await repo.claimNext({ queues: ["plan"], tenant: null, workerId: "w", leaseSeconds: 60, max: 500 });
        expect(claimed).toHaveLength(500);
      }
      const items = claimed.map((r) => ({ id: r.id, leaseToken: r.leaseToken!, result: { ok: true } }));

      for (const tenant of [null, "acme"]) {
        await rolledBack((tx) => repo.completeManyIfLeased(items, tenant, tx, true));
        const stmt = last!;
        for (const mode of PLAN_MODES) {
          const w = await explain(stmt, mode);
          // No item is compared with every other item or every running job, and the table is not
          // read: either plan finds each row by id, and probes it once more to update it. (A custom
          // plan that hashed the locked rows and scanned all 30,000 jobs to update them took 4 of
          // a 500-item acknowledgement's 11 ms.)
          expect({ tenant, mode, ...w }).toEqual({ tenant, mode, jobsRows: expect.any(Number), batchesRows: 0, joinFiltered: 0 });
          expect(w.jobsRows, `${mode} ${tenant}`).toBeLessThanOrEqual(2 * items.length);
        }
      }
      // And the statement still does its job: every item completed once.
      const done = await repo.completeManyIfLeased(items, "acme", traced, true);
      expect(done.map((r) => r.status)).toEqual(Array(500).fill("succeeded"));
    } finally {
      await env.c.sql`TRUNCATE jobs CASCADE`;
    }
  });

  it("a promotion of 1,000 held jobs probes one row per job, with or without a generic plan", async () => {
    try {
      await env.c.sql`
        INSERT INTO jobs (tenant, queue, kind, payload) SELECT 'acme', 'plan-promote', 'k', '{}' FROM generate_series(1, 30000)`;
      await env.c.sql`ANALYZE jobs`;
      await env.c.sql.unsafe(`
        INSERT INTO jobs (tenant, queue, kind, payload, fair_tag, run_at)
        SELECT 'acme', 'plan-promote', 'k', '{}', ${HELD_TAG}, now() - interval '1 s' FROM generate_series(1, 1000)`);
      lastRetag = null;
      await rolledBack((tx) => jobsRepository(tx).promoteDue(1000, tx));
      for (const mode of PLAN_MODES) {
        // As "jobs.id = t.id", the custom plan hashed the 1,000 ids and read all 31,000 jobs.
        const w = await explain(lastRetag!, mode);
        expect({ mode, ...w }).toEqual({ mode, jobsRows: expect.any(Number), batchesRows: 0, joinFiltered: 0 });
        expect(w.jobsRows, mode).toBeLessThanOrEqual(1000);
      }
    } finally {
      await env.c.sql`TRUNCATE jobs CASCADE`;
    }
  });

  it("an acknowledgement of one item keeps the generic plan instead of being planned on every call", async () => {
    const plans = await plansOnOwnSession("%WITH completed_items AS%", async (own, repo) => {
      await seed("plan-ack", 10);
      const claimed = await repo.claimNext({ queues: ["plan-ack"], tenant: null, workerId: "w", leaseSeconds: 60, max: 10 });
      // One item per statement, as a lone HTTP complete shares its statement with nobody.
      for (const r of claimed) expect(await repo.completeManyIfLeased([{ id: r.id, leaseToken: r.leaseToken!, result: null }], null, own, true)).toHaveLength(1);
    });
    // PostgreSQL plans the first five calls for their values, then keeps the generic plan if
    // it looks no dearer. Without the items' LIMIT it did not, and planned all ten.
    expect(plans).toEqual([{ genericPlans: 5, customPlans: 5 }]);
  });

  it("a one-row claim and a one-item acknowledgement keep their generic plans beside 100,000 retained jobs", async () => {
    try {
      await env.c.sql.unsafe(
        `INSERT INTO jobs (tenant, queue, kind, payload, status, attempts, finished_at, lease_token, started_at)
         SELECT 'acme', 'plan-retained', 'k', '{}', 'succeeded', 1, now(), gen_random_uuid(), now() FROM generate_series(1, 100000)`,
      );
      await seed("plan-retained", 20);
      await env.c.sql`ANALYZE jobs`;
      const claimAndAck = async (own: postgres.Sql, repo: ReturnType<typeof jobsRepository>) => {
        for (let i = 0; i < 10; i++) {
          const [r] = await repo.claimNext({ queues: ["plan-retained"], tenant: null, workerId: "w", leaseSeconds: 60, max: 1 });
          expect(await repo.completeManyIfLeased([{ id: r!.id, leaseToken: r!.leaseToken!, result: null }], null, own, true)).toHaveLength(1);
        }
      };
      // A claim that found its rows again through a range (jobs.id >= c.id AND jobs.id <= c.id)
      // was rated at 0.5 % of the table per row: its generic plan looked dear, and every claim
      // was planned again (0 generic, 10 custom), which cost a one-row claim a third more.
      expect(await plansOnOwnSession("%claimable AS (%", claimAndAck)).toEqual([{ genericPlans: 5, customPlans: 5 }]);
      expect(await plansOnOwnSession("%WITH completed_items AS%", claimAndAck)).toEqual([{ genericPlans: 5, customPlans: 5 }]);
      // A poll's acknowledgement and claim in one statement (process-next with complete).
      const combined = async (_own: postgres.Sql, repo: ReturnType<typeof jobsRepository>) => {
        await seed("plan-retained", 12);
        const f = { queues: ["plan-retained"], tenant: null, leaseSeconds: 60 };
        let [held] = (await repo.claimNextFor(f, [{ workerId: "w", max: 1 }]))[0]!;
        for (let i = 0; i < 10; i++) {
          const r = await repo.completeAndClaimFor([{ id: held!.id, leaseToken: held!.leaseToken!, result: null }], f, [{ workerId: "w", max: 1 }]);
          expect(r.completed).toHaveLength(1);
          [held] = r.claimed[0]!;
        }
      };
      expect(await plansOnOwnSession("%completed_items AS%claimable AS (%", combined)).toEqual([{ genericPlans: 5, customPlans: 5 }]);
    } finally {
      await env.c.sql`DELETE FROM jobs WHERE queue = 'plan-retained'`;
      await env.c.sql`ANALYZE jobs`;
    }
  });

  it("a single submit's lock on its fairness group keeps the generic plan", async () => {
    const plans = await plansOnOwnSession("%SELECT 1 FROM job_groups jg%", async (own, repo) => {
      for (let i = 0; i < 10; i++) await own.begin((tx) => repo.insertMany([toNewJob("acme", { queue: "plan-submit", kind: "k", payload: { i } })], tx));
    });
    // Without the LIMIT on its groups: ten custom plans.
    expect(plans).toEqual([{ genericPlans: 5, customPlans: 5 }]);
  });

  it("a claim of 500 walks the claim index and probes each row once, in either plan", async () => {
    const repo = jobsRepository(traced);
    await seed("plan2", 2000);
    await env.c.sql`ANALYZE jobs`;
    await repo.claimNext({ queues: ["plan2"], tenant: null, workerId: "w", leaseSeconds: 60, max: 500 });
    for (const mode of PLAN_MODES) {
      const w = await explain(lastClaim!, mode);
      expect({ mode, ...w }).toEqual({ mode, jobsRows: expect.any(Number), batchesRows: expect.any(Number), joinFiltered: 0 });
      expect(w.jobsRows, mode).toBeLessThanOrEqual(3 * 500);
    }
  });

  it("a claim shared by several polls walks the claim index and probes each row once, in either plan", async () => {
    const repo = jobsRepository(traced);
    await seed("plan2m", 2000);
    await env.c.sql`ANALYZE jobs`;
    const takers = Array.from({ length: 10 }, (_, i) => ({ workerId: `w${i}`, max: 50 }));
    const got = await repo.claimNextFor({ queues: ["plan2m"], tenant: null, leaseSeconds: 60 }, takers);
    expect(got.map((rows) => rows.length)).toEqual(Array(10).fill(50));
    expect(lastClaim!.query).toContain("row_number()");
    for (const mode of PLAN_MODES) {
      const w = await explain(lastClaim!, mode);
      expect({ mode, ...w }).toEqual({ mode, jobsRows: expect.any(Number), batchesRows: expect.any(Number), joinFiltered: 0 });
      expect(w.jobsRows, mode).toBeLessThanOrEqual(3 * 500);
    }
  });

  it("a claim of batch jobs does not read the finished batches kept for the retention period", async () => {
    const repo = jobsRepository(traced);
    await env.c.sql`
      INSERT INTO batches (tenant, status, total, remaining, sealed_at, started_at, finished_at)
      SELECT 'acme', 'succeeded', 1, 0, now(), now(), now() FROM generate_series(1, 20000)`;
    const [open] = await env.c.sql<{ id: string }[]>`
      INSERT INTO batches (tenant, status, total, remaining, sealed_at) VALUES ('acme', 'pending', 50, 50, now()) RETURNING id`;
    await env.c.sql`
      INSERT INTO jobs (tenant, queue, kind, payload, batch_id) SELECT 'acme', 'plan3', 'k', '{}', ${open!.id} FROM generate_series(1, 50)`;
    await env.c.sql`ANALYZE batches`;
    await repo.claimNext({ queues: ["plan3"], tenant: null, workerId: "w", leaseSeconds: 60, max: 10 });
    for (const mode of PLAN_MODES) {
      const w = await explain(lastClaim!, mode);
      // The preparing-batch check reads only batches being prepared (none here); starting
      // the batch reads that one batch.
      expect(w.batchesRows, mode).toBeLessThanOrEqual(10);
    }
  });

  it("a claim does not walk past jobs scheduled for later", async () => {
    const tomorrow = new Date(Date.now() + 86_400_000).toISOString();
    await env.c.sql.begin((tx) =>
      env.c.repos.jobs.insertMany(
        Array.from({ length: 3000 }, (_, i) => toNewJob("acme", { queue: "plan4", kind: "k", payload: { i }, runAt: tomorrow })),
        tx,
      ),
    );
    await claimOneBehind("plan4");
    for (const mode of PLAN_MODES) {
      const w = await explain(lastClaim!, mode);
      // The claim index holds only the 20 due jobs: the claim reads one and updates it.
      expect(w.jobsRows, mode).toBeLessThanOrEqual(5);
    }
  });

  it("neither a claim nor a promotion walks the jobs of a batch still being built", async () => {
    const open = await env.c.services.batches.create("acme", {
      seal: false,
      jobs: Array.from({ length: 3000 }, (_, i) => ({ queue: "plan5", kind: "k", payload: { i } })),
    });
    if (!open.ok) throw new Error(open.error);
    await claimOneBehind("plan5");
    await traced.begin((tx) => jobsRepository(traced).promoteDue(1000, tx));
    for (const mode of PLAN_MODES) {
      // Before open-batch tags, all 3,000 sat ahead of the 20 in the claim index.
      expect((await explain(lastClaim!, mode)).jobsRows, `claim, ${mode}`).toBeLessThanOrEqual(5);
      expect((await explain(lastPromotion!, mode)).jobsRows, `promotion, ${mode}`).toBeLessThanOrEqual(5);
    }
  });

  it("the oldest claimable job's age reads the queued jobs, not the retained history", async () => {
    // Without the earlier tests' queued jobs: with thousands of them beside the history, a scan of
    // the whole (small) table is a fair plan, and the question here is the history alone.
    await env.c.sql`TRUNCATE jobs CASCADE`;
    await env.c.sql`
      INSERT INTO jobs (tenant, queue, kind, payload, status, finished_at)
      SELECT 'acme', 'plan6', 'k', '{}', 'succeeded', now() FROM generate_series(1, 20000)`;
    await seed("plan6", 20);
    await env.c.sql`ANALYZE jobs`;
    await jobsRepository(traced).oldestClaimableByQueue(null);
    const [{ queued }] = await env.c.sql<[{ queued: number }]>`SELECT count(*)::int AS queued FROM jobs WHERE status = 'queued'`;
    for (const mode of PLAN_MODES) {
      // As one filter over all jobs it read all 20,000 finished rows as well.
      expect((await explain(lastOldest!, mode)).jobsRows, mode).toBeLessThanOrEqual(queued);
    }
  });

  it("a gated claim walks its window and a gated claim-by-id reads its own key, not the queue", async () => {
    // Queue controls: 50 serial keys of 100 jobs each. The claim-by-id of a key's last job once
    // counted the key's earlier jobs through the claim index (the whole queue) or a scan of jobs.
    const queue = "plan-gated";
    await env.c.sql`INSERT INTO queue_settings (queue, tenant, concurrency, group_concurrency) VALUES (${queue}, 'acme', 1000, 1)`;
    const jobs = Array.from({ length: 5000 }, (_, i) => toNewJob("acme", { queue, kind: "k", payload: { i }, groupKey: `key${i % 50}` }));
    await env.c.sql.begin((tx) => env.c.repos.jobs.insertMany(jobs, tx));
    await env.c.sql`ANALYZE jobs`;
    const repo = jobsRepository(traced);
    expect((await repo.claimNextFor({ queues: [queue], tenant: null, leaseSeconds: 60 }, [{ workerId: "w", max: 10 }], true))[0]).toHaveLength(10);
    const [last] = await env.c.sql<[{ id: string }]>`
      SELECT id FROM jobs WHERE queue = ${queue} AND group_key = 'key49' ORDER BY priority DESC, fair_tag DESC, id DESC LIMIT 1`;
    expect((await repo.claimIfQueued(last.id, { tenant: "acme", workerId: "w", leaseSeconds: 60 })).refused).toBe("concurrency_limited");
    for (const mode of PLAN_MODES) {
      // The walk reads at most max(4 * 10, 10 + 64) due jobs and probes each key's slots once.
      expect((await explain(lastClaim!, mode)).jobsRows, `claim, ${mode}`).toBeLessThanOrEqual(3 * 74);
      expect((await explain(lastClaimById!, mode)).jobsRows, `claim by id, ${mode}`).toBeLessThanOrEqual(10);
    }
  });

  it("the reaper reads the jobs holding slots (jobs_slot_idx), not the table", async () => {
    // Beside 20,000 queued and 20,000 finished jobs: 200 running (50 with expired leases) and
    // 100 retries waiting their backoff. The reaper's one scan reads the 300 slot holders' index
    // entries and fetches only the expired ones; finished or queued rows never.
    const queue = "plan-reap";
    await env.c.sql`TRUNCATE jobs CASCADE`;
    await seed(queue, 20_000);
    await env.c.sql`
      INSERT INTO jobs (tenant, queue, kind, payload, status, attempts, lease_token, started_at, finished_at)
      SELECT 'acme', ${queue}, 'k', '{}', 'succeeded', 1, gen_random_uuid(), now(), now() FROM generate_series(1, 20000)`;
    await env.c.sql`
      INSERT INTO jobs (tenant, queue, kind, payload, status, attempts, lease_token, lease_expires_at, started_at, group_key)
      SELECT 'acme', ${queue}, 'k', '{}', 'running', 1, gen_random_uuid(),
             now() + CASE WHEN i <= 50 THEN interval '-1 min' ELSE interval '1 min' END, now(), 'key' || (i % 7)
      FROM generate_series(1, 200) i`;
    await env.c.sql`
      INSERT INTO jobs (tenant, queue, kind, payload, status, attempts, run_at)
      SELECT 'acme', ${queue}, 'k', '{}', 'queued', 1, now() + interval '1 hour' FROM generate_series(1, 100)`;
    await env.c.sql`ANALYZE jobs`;
    expect(await rolledBack((tx) => jobsRepository(tx).reapExpired(1000, tx))).toHaveLength(50);
    expect(lastReap).not.toBeNull();
    for (const mode of PLAN_MODES) {
      const w = await explain(lastReap!, mode);
      // 50 expired rows locked, updated and finalised; a Seq Scan would read 40,300.
      expect(w.jobsRows, mode).toBeLessThanOrEqual(3 * 50);
    }
  });
});
