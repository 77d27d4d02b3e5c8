import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { JobRow } from "../../src/repositories/jobs.js";
import { createWorker } from "../../src/worker/handlers.js";
import { until } from "../e2e/helpers/util.js";
import { createTestEnv, type TestEnv } from "../helpers/app.js";

// Statements shared by several callers (completes, submits) and createWorker's batched
// acknowledgement: when PostgreSQL refuses one caller's value, only that caller fails.
// jobline refuses what it knows PostgreSQL cannot store before it shares a statement; a
// trigger in this test's database stands for anything it does not know (an extension's
// type check, a constraint added by an operator): a real refusal, SQLSTATE 22023.

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv("data_errors");
  await env.c.sql.unsafe(`
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
afterAll(async () => env?.close());

const svc = () => env.c.services.jobs;
const submit = async (queue: string, payload: object = {}) => {
  const r = await svc().submit("acme", { queue, kind: "k", payload });
  if (!r.ok) throw new Error(r.error);
  return r.value;
};

/** Counts each shared statement's size (the real repository method, wrapped). */
function watch<K extends "completeManyIfLeased" | "insertMany">(name: K): { sizes: number[]; restore: () => void } {
  const repo = env.c.repos.jobs;
  const real = repo[name];
  const sizes: number[] = [];
  // biome-ignore lint/suspicious/noExplicitAny: a pass-through wrapper of either method
  (repo as any)[name] = (items: unknown[], ...rest: unknown[]) => {
    sizes.push(items.length);
    // biome-ignore lint/suspicious/noExplicitAny: same
    return (real as any)(items, ...rest);
  };
  return {
    sizes,
    restore: () => {
      repo[name] = real;
    },
  };
}

describe("a value PostgreSQL refuses fails only its own caller", () => {
  it("shared completes: one poisoned result among 40 concurrent completes", async () => {
    for (let i = 0; i < 40; i++) await submit("dc");
    const claimed = await svc().claimNext({ queues: ["dc"], scope: null, workerId: "w", leaseSeconds: 60, max: 40, waitMs: 0 });
    expect(claimed).toHaveLength(40);
    const w = watch("completeManyIfLeased");
    let outcomes: PromiseSettledResult<unknown>[];
    try {
      outcomes = await Promise.allSettled(
        claimed.map((j: JobRow, i) => svc().complete(j.id, "acme", j.leaseToken!, i === 7 ? { poison: true } : { i })),
      );
    } finally {
      w.restore();
    }
    // The poisoned complete did share a statement with others.
    expect(Math.max(...w.sizes)).toBeGreaterThan(1);
    const rejected = outcomes.flatMap((o, i) => (o.status === "rejected" ? [i] : []));
    expect(rejected).toEqual([7]);
    expect((outcomes[7] as PromiseRejectedResult).reason).toMatchObject({ code: "22023" });
    const rows = await env.c.sql<{ status: string; n: number }[]>`
      SELECT status, count(*)::int AS n FROM jobs WHERE queue = 'dc' GROUP BY status ORDER BY status`;
    expect(rows).toEqual([
      { status: "running", n: 1 },
      { status: "succeeded", n: 39 },
    ]);
  });

  it("shared submits: one poisoned payload among 40 concurrent submits", async () => {
    const w = watch("insertMany");
    let outcomes: PromiseSettledResult<unknown>[];
    try {
      outcomes = await Promise.allSettled(Array.from({ length: 40 }, (_, i) => submit("ds", i === 11 ? { poison: true } : { i })));
    } finally {
      w.restore();
    }
    expect(Math.max(...w.sizes)).toBeGreaterThan(1);
    expect(outcomes.flatMap((o, i) => (o.status === "rejected" ? [i] : []))).toEqual([11]);
    const [r] = await env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'ds'`;
    expect(r!.n).toBe(39);
  });

  it("createWorker: the batch is recorded job by job; only the poisoned job fails, no job runs twice", async () => {
    for (let i = 0; i < 30; i++) await submit("dw", { i });
    const runs = new Map<string, number>();
    const worker = createWorker({
      container: env.c,
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
        const [r] = await env.c.sql<{ open: number }[]>`
          SELECT count(*) FILTER (WHERE finished_at IS NULL)::int AS open FROM jobs WHERE queue = 'dw'`;
        return r!.open === 0 ? true : undefined;
      }, 20_000);
    } finally {
      await worker.stop(2000);
    }
    const rows = await env.c.sql<{ i: number; status: string; attempts: number; code: string | null }[]>`
      SELECT (payload->>'i')::int AS i, status, attempts, last_error->>'code' AS code FROM jobs WHERE queue = 'dw' ORDER BY 1`;
    expect(rows.filter((r) => r.status !== "succeeded")).toEqual([{ i: 13, status: "failed", attempts: 1, code: "result_not_storable" }]);
    expect(rows.every((r) => r.attempts === 1)).toBe(true);
    expect([...runs.values()].every((n) => n === 1)).toBe(true);
    expect(runs.size).toBe(30);
  });
  it("over HTTP, the refused request is answered 400 problem+json, not 500", async () => {
    const client = await env.key("acme", "client");
    const res = await env.http().post("/v1/jobs").set("authorization", client).send({ queue: "dh", kind: "k", payload: { poison: 1 } });
    expect(res.status).toBe(400);
    expect(res.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(res.body.code).toBe("invalid");
  });
});
