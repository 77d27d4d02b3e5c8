import { beforeAll, describe, expect, it } from "vitest";
import type { JobRow } from "../../src/repositories/jobs.js";
import { createWorker } from "../../src/worker/inProcess.js";
import { until } from "../e2e/helpers/util.js";
import { claimDirect, submitDirect, useTestEnv } from "../helpers/app.js";

// Statements shared by several callers (completes, submits) and createWorker's batched
// acknowledgement: when PostgreSQL refuses one caller's value, only that caller fails.
// jobline refuses what it knows PostgreSQL cannot store before it shares a statement; a
// trigger in this test's database stands for anything it does not know (an extension's
// type check, a constraint added by an operator): a real refusal, SQLSTATE 22023.

const setup = useTestEnv("data_errors");
beforeAll(async () => {
  await setup.env.c.sql.unsafe(`
    CREATE FUNCTION test_refuse_poison() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.payload ? 'poison' OR coalesce(NEW.result ? 'poison', false) THEN
        RAISE EXCEPTION 'refused by test trigger' USING ERRCODE = '22023';
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_refuse_poison BEFORE INSERT OR UPDATE ON jobs
      FOR EACH ROW EXECUTE FUNCTION test_refuse_poison();`);
});

const svc = () => setup.env.c.services.jobs;
const submit = (queue: string, payload: object = {}) => submitDirect(setup.env, "acme", { queue, kind: "k", payload });

/** Counts each shared statement's size (the real repository method, wrapped). */
function watch<K extends "completeManyIfLeased" | "insertMany" | "insert">(name: K) {
  const repo = setup.env.c.repos.jobs;
  const real = repo[name];
  const w = {
    sizes: [] as number[],
    /** Most statements of this kind running at once. */
    peak: 0,
    restore: () => {
      repo[name] = real;
    },
  };
  let running = 0;
  // biome-ignore lint/suspicious/noExplicitAny: a pass-through wrapper of any of the methods
  (repo as any)[name] = async (items: unknown, ...rest: unknown[]) => {
    w.sizes.push(Array.isArray(items) ? items.length : 1);
    w.peak = Math.max(w.peak, ++running);
    try {
      // biome-ignore lint/suspicious/noExplicitAny: same
      return await (real as any)(items, ...rest);
    } finally {
      running--;
    }
  };
  return w;
}

describe("a value PostgreSQL refuses fails only its own caller", () => {
  it("shared completes: one poisoned result among 40 concurrent completes", async () => {
    for (let i = 0; i < 40; i++) await submit("dc");
    const claimed = await claimDirect(setup.env, "dc", { max: 40 });
    expect(claimed).toHaveLength(40);
    const w = watch("completeManyIfLeased");
    let outcomes: Array<{ ok: boolean; error?: string }>;
    try {
      outcomes = await Promise.all(
        claimed.map((j: JobRow, i) => svc().complete(j.id, "acme", j.leaseToken!, i === 7 ? { poison: true } : { i })),
      );
    } finally {
      w.restore();
    }
    // The poisoned complete did share a statement with others, and the halving that found it
    // ran a few statements, one at a time.
    expect(Math.max(...w.sizes)).toBeGreaterThan(1);
    expect(w.peak).toBe(1);
    expect(w.sizes.length).toBeLessThan(25);
    expect(outcomes.flatMap((o, i) => (o.ok ? [] : [[i, o.error]]))).toEqual([[7, "invalid"]]);
    const rows = await setup.env.c.sql<{ status: string; n: number }[]>`
      SELECT status, count(*)::int AS n FROM jobs WHERE queue = 'dc' GROUP BY status ORDER BY status`;
    expect(rows).toEqual([
      { status: "running", n: 1 },
      { status: "succeeded", n: 39 },
    ]);
  });

  it("shared submits: one poisoned payload among 40 concurrent submits; the retries run one at a time", async () => {
    const w = watch("insertMany");
    const single = watch("insert");
    let outcomes: PromiseSettledResult<unknown>[];
    try {
      outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => submit("ds", i === 11 ? { poison: true } : { i })));
    } finally {
      single.restore();
      w.restore();
    }
    expect(Math.max(...w.sizes)).toBeGreaterThan(1);
    // Halving finds the one at fault in a few statements, never two at once: re-running each
    // submit alone and at once took the whole pool and queued them on one fairness row.
    expect(w.peak + single.peak).toBeLessThanOrEqual(2);
    expect(w.sizes.length + single.sizes.length).toBeLessThan(20);
    expect(outcomes.flatMap((o, i) => (o.status === "rejected" ? [i] : []))).toEqual([11]);
    const [r] = await setup.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'ds'`;
    expect(r!.n).toBe(39);
  });

  it("createWorker: the batch is recorded job by job; only the poisoned job fails, no job runs twice", async () => {
    for (let i = 0; i < 30; i++) await submit("dw", { i });
    const runs = new Map<string, number>();
    const worker = createWorker({
      container: setup.env.c,
      queues: ["dw"],
      concurrency: 30,
      batchSize: 30,
      waitMs: 200,
      handlers: {
        k: async (job) => {
          runs.set(job.id, (runs.get(job.id) ?? 0) + 1);
          return (job.payload as { i: number }).i === 13 ? { poison: true } : { ok: true };
        },
      },
    });
    try {
      await until("every job finished", async () => {
        const [r] = await setup.env.c.sql<{ open: number }[]>`
          SELECT count(*) FILTER (WHERE finished_at IS NULL)::int AS open FROM jobs WHERE queue = 'dw'`;
        return r!.open === 0 ? true : undefined;
      }, 20_000);
    } finally {
      await worker.stop(2000);
    }
    const rows = await setup.env.c.sql<{ i: number; status: string; attempts: number; code: string | null }[]>`
      SELECT (payload->>'i')::int AS i, status, attempts, last_error->>'code' AS code FROM jobs WHERE queue = 'dw' ORDER BY 1`;
    expect(rows.filter((r) => r.status !== "succeeded")).toEqual([{ i: 13, status: "failed", attempts: 1, code: "result_not_storable" }]);
    expect(rows.every((r) => r.attempts === 1)).toBe(true);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(runs.size).toBe(30);
  });
  it("over HTTP, the refused request is answered 400 problem+json, not 500", async () => {
    const client = await setup.env.key("acme", "client");
    const res = await setup.env.http().post("/v1/jobs").set("authorization", client).send({ queue: "dh", kind: "k", payload: { poison: 1 } });
    expect(res.status).toBe(400);
    expect(res.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(res.body.code).toBe("invalid");
  });
  it("over HTTP, a poll's completions: the refused item is answered 400, the others complete, and the poll still leases", async () => {
    const worker = await setup.env.key("acme", "worker");
    for (let i = 0; i < 4; i++) await submit("dp", { i });
    const claimed = await claimDirect(setup.env, "dp", { max: 3 });
    // The acknowledgements and the claim share one statement, which the refusal rolls back:
    // both must then run again on their own.
    const res = await setup.env
      .http()
      .post("/v1/process-next")
      .set("authorization", worker)
      .send({
        queues: ["dp"],
        workerId: "w",
        max: 1,
        waitMs: 0,
        complete: claimed.map((j, i) => ({ id: j.id, leaseToken: j.leaseToken, result: i === 1 ? { poison: 1 } : { i } })),
      });
    expect(res.status).toBe(200);
    expect(res.body.completed.map((x: { status: number }) => x.status)).toEqual([200, 400, 200]);
    expect(res.body.jobs).toHaveLength(1);
    const rows = await setup.env.c.sql<{ id: string; status: string }[]>`SELECT id, status FROM jobs WHERE queue = 'dp'`;
    const status = new Map(rows.map((r) => [r.id, r.status]));
    expect(claimed.map((j) => status.get(j.id))).toEqual(["succeeded", "running", "succeeded"]);
    expect(status.get(res.body.jobs[0].id)).toBe("running");
    expect(claimed.map((j) => j.id)).not.toContain(res.body.jobs[0].id);
  });
  it("over HTTP, a batch acknowledgement answers the refused item 400 and completes the others", async () => {
    const worker = await setup.env.key("acme", "worker");
    for (let i = 0; i < 3; i++) await submit("db");
    const claimed = await claimDirect(setup.env, "db", { max: 3 });
    const res = await setup.env
      .http()
      .post("/v1/jobs/complete")
      .set("authorization", worker)
      .send({ items: claimed.map((j, i) => ({ id: j.id, leaseToken: j.leaseToken, result: i === 1 ? { poison: 1 } : { i } })) });
    expect(res.status).toBe(200);
    expect(res.body.items.map((x: { status: number }) => x.status)).toEqual([200, 400, 200]);
    const rows = await setup.env.c.sql<{ id: string; status: string }[]>`SELECT id, status FROM jobs WHERE queue = 'db'`;
    const status = new Map(rows.map((r) => [r.id, r.status]));
    expect(claimed.map((j) => status.get(j.id))).toEqual(["succeeded", "running", "succeeded"]);
  });
});
