import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { HELD_TAG } from "../../src/db/schema.js";
import { HOLD_AHEAD_MS } from "../../src/repositories/jobs.js";
import { toNewJob } from "../../src/services/jobs.js";
import { inTx } from "../../src/services/tx.js";
import { createTestEnv, type TestEnv } from "../helpers/app.js";

// Jobs submitted with a runAt well ahead are held: no fairness tag from their group, not in
// the claim index. When due, a claiming process tags them as a submit at that moment would.

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv("scheduled_jobs");
});
afterAll(async () => env?.close());

const svc = () => env.c.services.jobs;
const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString();
const claim = (queue: string, max = 1, waitMs = 0) =>
  svc().claimNext({ queues: [queue], scope: null, workerId: "w", leaseSeconds: 60, max, waitMs });
const heldMany = (queue: string, n: number, groupKey: string, runAt = tomorrow()) =>
  env.c.sql.begin((tx) =>
    env.c.repos.jobs.insertMany(
      Array.from({ length: n }, (_, i) => toNewJob("acme", { queue, kind: "k", payload: { i }, groupKey, runAt })),
      tx,
    ),
  );
const tagOf = async (id: string) => {
  const [r] = await env.c.sql<{ tag: number }[]>`SELECT fair_tag::float8 AS tag FROM jobs WHERE id = ${id}`;
  return r!.tag;
};
/** Test-only time travel: the jobs' runAt passes. */
const makeDue = (queue: string) => env.c.sql`UPDATE jobs SET run_at = now() - interval '1 millisecond' WHERE queue = ${queue}`;

describe("scheduled jobs", () => {
  it("a job held until tomorrow is not claimable, takes no tag from its group, and is claimed once due", async () => {
    const single = await svc().submit("acme", { queue: "s1", kind: "k", payload: {}, groupKey: "A", runAt: tomorrow() });
    if (!single.ok) throw new Error(single.error);
    const many = await heldMany("s1", 50, "A");
    expect(await tagOf(single.value.id)).toBe(HELD_TAG);
    for (const j of many) expect(Number(j.fairTag)).toBe(HELD_TAG);
    // Group A's counter was not moved by 51 held jobs (it does not exist yet).
    expect(await env.c.sql`SELECT 1 FROM job_groups WHERE queue = 's1' AND fair_key LIKE 'acme%'`).toHaveLength(0);
    expect(await claim("s1", 10)).toEqual([]);

    await makeDue("s1");
    // A long poll picks them up: the claim that follows the promotion sees them.
    const got = [...(await claim("s1", 100, 3000))];
    while (got.length < 51) {
      const more = await claim("s1", 100, 3000);
      if (more.length === 0) break;
      got.push(...more);
    }
    expect(new Set(got.map((j) => j.id)).size).toBe(51);
    for (const j of got) expect(Number(j.fairTag)).toBeLessThan(HELD_TAG);
  });

  it("a job due within a few seconds is not held, and still waits for its runAt", async () => {
    const soon = new Date(Date.now() + HOLD_AHEAD_MS - 2000).toISOString();
    const r = await svc().submit("acme", { queue: "s2", kind: "k", payload: {}, runAt: soon });
    if (!r.ok) throw new Error(r.error);
    expect(await tagOf(r.value.id)).toBeLessThan(HELD_TAG);
    expect(await claim("s2")).toEqual([]);
  });

  it("once due, held jobs interleave with a waiting flood like fresh submits, not behind it", async () => {
    const b = (await heldMany("s3", 10, "B")).map((j) => j.id);
    await env.c.sql.begin((tx) =>
      env.c.repos.jobs.insertMany(
        Array.from({ length: 1000 }, (_, i) => toNewJob("acme", { queue: "s3", kind: "k", payload: { i }, groupKey: "A" })),
        tx,
      ),
    );
    await env.c.sql`UPDATE jobs SET run_at = now() - interval '1 millisecond' WHERE id = ANY(${b}::uuid[])`;
    const promoted = await inTx(env.c.sql, (tx) => env.c.repos.jobs.promoteDue(1000, tx));
    expect(promoted).toEqual({ promoted: 10, queues: ["s3"] });
    const order: string[] = [];
    for (let i = 0; i < 30; i++) order.push(...(await claim("s3")).map((j) => j.id));
    const pos = b.map((id) => order.indexOf(id));
    for (const p of pos) expect(p, `B's jobs at claims ${pos.join(",")}`).toBeGreaterThanOrEqual(0);
  });

  it("a retry further ahead than a few seconds is held too; a short one keeps its place", async () => {
    const submitted = await Promise.all([0, 1].map(() => svc().submit("acme", { queue: "s5", kind: "k", payload: {} })));
    const [long, short] = await claim("s5", 2);
    for (const s of submitted) if (!s.ok) throw new Error(s.error);
    const fail = (j: { id: string; leaseToken: string | null }, retryAfterSeconds: number) =>
      svc().fail(j.id, null, { leaseToken: j.leaseToken!, error: { message: "x" }, retryable: true, retryAfterSeconds });
    expect((await fail(long!, 3600)).ok).toBe(true);
    expect((await fail(short!, 1)).ok).toBe(true);
    expect(await tagOf(long!.id)).toBe(HELD_TAG);
    expect(await tagOf(short!.id)).toBe(Number(short!.fairTag));
    await makeDue("s5");
    await inTx(env.c.sql, (tx) => env.c.repos.jobs.promoteDue(1000, tx));
    expect(new Set((await claim("s5", 10)).map((j) => j.id))).toEqual(new Set([long!.id, short!.id]));
  });

  it("concurrent promotions tag each due job exactly once, with distinct tags per group", async () => {
    await heldMany("s4", 1500, "C");
    await makeDue("s4");
    const promote = () => inTx(env.c.sql, (tx) => env.c.repos.jobs.promoteDue(200, tx));
    let total = 0;
    for (;;) {
      const rs = await Promise.all(Array.from({ length: 6 }, promote));
      const n = rs.reduce((a, r) => a + r.promoted, 0);
      total += n;
      if (n === 0) break;
    }
    expect(total).toBe(1500);
    const [r] = await env.c.sql<{ held: number; tags: number }[]>`
      SELECT count(*) FILTER (WHERE fair_tag >= ${HELD_TAG})::int AS held, count(DISTINCT fair_tag)::int AS tags
      FROM jobs WHERE queue = 's4'`;
    expect(r).toEqual({ held: 0, tags: 1500 });
  });
});
