import { beforeAll, describe, expect, it } from "vitest";
import type { NewJob } from "../../src/repositories/jobs.js";
import { toNewJob } from "../../src/services/jobs.js";
import { claimDirect, processNext, useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("core_fairness");
let platformWorker: string;
beforeAll(async () => {
  platformWorker = await setup.env.key("*", "worker");
});

const newJob = (tenant: string, queue: string, groupKey: string | null, i: number): NewJob =>
  toNewJob(tenant, { queue, kind: "k", payload: { i }, groupKey: groupKey ?? undefined });

/** A flood inserted in one transaction, as a batch would. */
const flood = (tenant: string, queue: string, groupKey: string | null, n: number) =>
  setup.env.c.sql.begin((tx) => setup.env.c.repos.jobs.insertMany(Array.from({ length: n }, (_, i) => newJob(tenant, queue, groupKey, i)), tx));

/** Jobs submitted one by one over HTTP, after the flood. */
async function trickle(tenant: string, queue: string, groupKey: string | undefined, n: number, extra: object = {}) {
  const key = await setup.env.key(tenant, "client");
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = await setup.env.http().post("/v1/jobs").set("authorization", key).send({ queue, kind: "k", groupKey, payload: { i }, ...extra });
    expect(r.status).toBe(201);
    ids.push(r.body.id);
  }
  return ids;
}

/** `n` single claims over HTTP; returns the claimed ids in claim order. */
async function claimSingles(queue: string, n: number, key = platformWorker) {
  const order: string[] = [];
  for (let i = 0; i < n; i++) {
    const { jobs } = await processNext(setup.env, key, { queues: [queue], max: 1 });
    expect(jobs.length).toBeLessThanOrEqual(1);
    if (jobs[0]) order.push(jobs[0].id);
  }
  return order;
}

describe("fairness", () => {
  it("one poll of max 14 gets its jobs in claim order: by priority, then first in, first out", async () => {
    const key = await setup.env.key("acme", "client");
    // Priorities shuffled on submit, then four of priority 0 in one group.
    for (const [i, priority] of [3, 9, 1, 6, 2, 8, 5, 10, 7, 4].entries()) {
      const r = await setup.env.http().post("/v1/jobs").set("authorization", key).send({ queue: "order", kind: "k", priority, payload: { i } });
      expect(r.status).toBe(201);
    }
    await setup.env.c.sql.begin((tx) => setup.env.c.repos.jobs.insertMany(Array.from({ length: 4 }, (_, i) => newJob("acme", "order", "A", 100 + i)), tx));
    const r = await setup.env.http().post("/v1/process-next").set("authorization", platformWorker).send({ queues: ["order"], workerId: "w", max: 14 });
    expect(r.status).toBe(200);
    const got = r.body.jobs.map((j: { priority: number; payload: { i: number } }) => [j.priority, j.payload.i]);
    expect(got).toEqual([[10, 7], [9, 1], [8, 5], [7, 8], [6, 3], [5, 6], [4, 9], [3, 0], [2, 4], [1, 2], [0, 100], [0, 101], [0, 102], [0, 103]]);
  });

  it("group key A with 2,000 queued jobs, then key B with 10: all of B claimed within the first 40 single claims", async () => {
    await flood("acme", "fair1", "A", 2000);
    const b = await trickle("acme", "fair1", "B", 10);
    const order = await claimSingles("fair1", 40);
    expect(order).toHaveLength(40);
    const positions = b.map((id) => order.indexOf(id));
    console.log(`fairness (group keys): B's claim positions ${JSON.stringify(positions)}`);
    for (const p of positions) expect(p).toBeGreaterThanOrEqual(0);
    // B's jobs keep their own submission order.
    expect([...positions].sort((x, y) => x - y)).toEqual(positions);
  });

  it("the same across tenants: tenant X with 2,000 jobs, then tenant Y with 10", async () => {
    await flood("xcorp", "fair2", null, 2000);
    const y = await trickle("ycorp", "fair2", undefined, 10);
    const order = await claimSingles("fair2", 40);
    const positions = y.map((id) => order.indexOf(id));
    console.log(`fairness (tenants): Y's claim positions ${JSON.stringify(positions)}`);
    for (const p of positions) expect(p).toBeGreaterThanOrEqual(0);
  });

  it("a tenant's own worker key is still fair across its group keys", async () => {
    await flood("acme", "fair3", "A", 2000);
    const b = await trickle("acme", "fair3", "B", 10);
    const order = await claimSingles("fair3", 40, await setup.env.key("acme", "worker"));
    for (const id of b) expect(order).toContain(id);
  });

  it("a higher priority job beats fairness: claimed first, even from the flooding key", async () => {
    await flood("acme", "fair4", "A", 2000);
    const b = await trickle("acme", "fair4", "B", 3);
    const [urgent] = await trickle("acme", "fair4", "A", 1, { priority: 5 });
    const order = await claimSingles("fair4", 10);
    expect(order[0]).toBe(urgent);
    for (const id of b) expect(order).toContain(id);
  });

  it("past volume earns no credit: a key that drained its backlog does not starve a newcomer later", async () => {
    await flood("acme", "fair5", "A", 300);
    let drained = 0;
    for (;;) {
      const rows = await claimDirect(setup.env, "fair5", { max: 100 });
      if (rows.length === 0) break;
      drained += rows.length;
    }
    expect(drained).toBe(300);
    // A floods again, then C arrives: C is not queued behind A's new 2,000.
    await flood("acme", "fair5", "A", 2000);
    const cIds = await trickle("acme", "fair5", "C", 5);
    const order = await claimSingles("fair5", 20);
    for (const id of cIds) expect(order).toContain(id);
  });
});
