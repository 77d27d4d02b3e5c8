import { describe, expect, it } from "vitest";
import type { NewJob } from "../../src/repositories/jobs.js";
import { toNewJob } from "../../src/services/jobs.js";
import { claimDirect, submitDirect, useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("jobs_fairness");

const svc = () => setup.env.c.services.jobs;

const submit = (tenant: string, queue: string, extra: { groupKey?: string; priority?: number; payload?: unknown } = {}) =>
  submitDirect(setup.env, tenant, { queue, kind: "k", payload: extra.payload ?? {}, ...extra });
/** Many jobs through the batch path (one multi-row INSERT), which allocates tags its own way. */
async function insertMany(tenant: string, queue: string, n: number, groupKey?: (i: number) => string) {
  const jobs: NewJob[] = Array.from({ length: n }, (_, i) =>
    toNewJob(tenant, { queue, kind: "k", payload: { i }, groupKey: groupKey?.(i) }),
  );
  await setup.env.c.sql.begin((tx) => setup.env.c.repos.jobs.insertMany(jobs, tx));
}
/** Claims one at a time and returns the job ids in claim order. */
async function claimOrder(queue: string, n: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const rows = await claimDirect(setup.env, queue);
    if (rows.length === 0) break;
    out.push(rows[0]!.id);
  }
  return out;
}
const positions = (order: string[], ids: string[]) => ids.map((id) => order.indexOf(id));

describe("fair claiming", () => {
  it("the same through the batch insert path", async () => {
    await insertMany("acme", "f2", 2000, () => "A");
    const b = [];
    for (let i = 0; i < 10; i++) b.push((await submit("acme", "f2", { groupKey: "B" })).id);
    const pos = positions(await claimOrder("f2", 40), b);
    for (const p of pos) expect(p).toBeGreaterThanOrEqual(0);
  });

  it("a key's past volume earns it no debt: B ran 300 jobs before, A then floods 2,000, B's 10 still come within 40 claims", async () => {
    // B alone, served as it goes (the queue is mostly empty, as with fast workers).
    for (let i = 0; i < 300; i++) {
      await submit("acme", "f4", { groupKey: "B" });
      if (i % 10 === 9) await claimOrder("f4", 10);
    }
    await claimOrder("f4", 1000);
    await insertMany("acme", "f4", 2000, () => "A");
    const b = [];
    for (let i = 0; i < 10; i++) b.push((await submit("acme", "f4", { groupKey: "B" })).id);
    const pos = positions(await claimOrder("f4", 40), b);
    console.log(`fairness (after history): B's jobs at claims ${pos.join(",")}`);
    for (const p of pos) expect(p).toBeGreaterThanOrEqual(0);
  });

  it("a job scheduled far ahead does not hold the queue's virtual time back", async () => {
    // B's history, then one old-tagged job of C scheduled for tomorrow, then A's flood.
    for (let i = 0; i < 200; i++) await submit("acme", "f5", { groupKey: "B" });
    const later = await svc().submit("acme", { queue: "f5", kind: "k", payload: {}, groupKey: "C", runAt: new Date(Date.now() + 86_400_000).toISOString() });
    expect(later.ok).toBe(true);
    await claimOrder("f5", 1000);
    await insertMany("acme", "f5", 2000, () => "A");
    const b = [];
    for (let i = 0; i < 10; i++) b.push((await submit("acme", "f5", { groupKey: "B" })).id);
    const pos = positions(await claimOrder("f5", 40), b);
    console.log(`fairness (scheduled job at the head): B's jobs at claims ${pos.join(",")}`);
    for (const p of pos) expect(p).toBeGreaterThanOrEqual(0);
  });

  it("jobs submitted while a big batch is preparing interleave with it once it is sealed", async () => {
    const batches = setup.env.c.services.batches;
    const open = await batches.create("acme", { seal: false, jobs: Array.from({ length: 1000 }, (_, i) => ({ queue: "f8", kind: "k", payload: { i }, groupKey: "A" })) });
    if (!open.ok) throw new Error(open.error);
    const b = [];
    for (let i = 0; i < 10; i++) b.push((await submit("acme", "f8", { groupKey: "B" })).id);
    const sealed = await batches.seal(open.value.batch.id, "acme");
    expect(sealed.ok).toBe(true);
    const pos = positions(await claimOrder("f8", 40), b);
    console.log(`fairness (batch sealed after B's jobs): B's jobs at claims ${pos.join(",")}`);
    for (const p of pos) expect(p).toBeGreaterThanOrEqual(0);
  });

  it("fair order holds in multi-job claims too: max 20 from A's flood and B's job includes B", async () => {
    await insertMany("acme", "f7", 1000, () => "A");
    const b = (await submit("acme", "f7", { groupKey: "B" })).id;
    const rows = await claimDirect(setup.env, "f7", { max: 20 });
    expect(rows.map((r) => r.id)).toContain(b);
  });
});
