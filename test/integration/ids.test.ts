import { describe, expect, it } from "vitest";
import { useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

// Ids are UUIDv7 so that jobs submitted together sit together in the primary key (src/domain/ids.ts).
const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string) => Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16);

const setup = useTestEnv("ids");

const submit = (body: object, idempotencyKey?: string) => {
  const r = setup.env.http().post("/v1/jobs").set("authorization", setup.client);
  return (idempotencyKey ? r.set("idempotency-key", idempotencyKey) : r).send(body);
};
/** An id made when its row was created, by whichever side made it (Node or the database). */
const expectTimeOrdered = (id: string, createdAt: Date | string, what: string) => {
  expect(id, what).toMatch(UUID_V7);
  expect(Math.abs(msOf(id) - new Date(createdAt).getTime()), what).toBeLessThan(2000);
};

describe("ids are time-ordered UUIDv7", () => {
  it("for jobs however they are submitted, for batches and for webhook events", async () => {
    const alone = await submit({ queue: "ids", kind: "k" }); // alone: a one-row insert
    expect(alone.status).toBe(201);
    expectTimeOrdered(alone.body.id, alone.body.createdAt, "single submit");
    const keyed = await submit({ queue: "ids", kind: "k" }, "ids-key-1");
    expectTimeOrdered(keyed.body.id, keyed.body.createdAt, "submit with an idempotency key");
    // Concurrent submits share multi-row inserts, whose ids Node makes.
    const together = await Promise.all(Array.from({ length: 40 }, () => submit({ queue: "ids-many", kind: "k" })));
    for (const r of together) expectTimeOrdered(r.body.id, r.body.createdAt, "concurrent submit");

    const batch = await setup.env.http().post("/v1/batches").set("authorization", setup.client).send({ jobs: [{ queue: "ids-b", kind: "k" }, { queue: "ids-b", kind: "k" }] });
    expect(batch.status).toBe(201);
    expectTimeOrdered(batch.body.id, batch.body.createdAt, "batch");
    const batchJobs = await setup.env.c.sql<{ id: string; createdAt: Date }[]>`SELECT id, created_at FROM jobs WHERE batch_id = ${batch.body.id}`;
    expect(batchJobs).toHaveLength(2);
    for (const j of batchJobs) expectTimeOrdered(j.id, j.createdAt, "job of a batch");

    const hooked = await setup.env.c.services.jobs.submit("acme", { queue: "ids-h", kind: "k", payload: {}, webhookUrl: "http://127.0.0.1:9/hook" });
    if (!hooked.ok) throw new Error(hooked.error);
    const [claimed] = await setup.env.c.services.jobs.claimNext({ queues: ["ids-h"], scope: "acme", workerId: "w", leaseSeconds: 30, max: 1, waitMs: 0 });
    expect((await setup.env.c.services.jobs.complete(claimed!.id, "acme", claimed!.leaseToken!, null)).ok).toBe(true);
    const [event] = await setup.env.c.sql<{ id: string; createdAt: Date }[]>`SELECT id, created_at FROM webhook_outbox WHERE subject_id = ${claimed!.id}`;
    expectTimeOrdered(event!.id, event!.createdAt, "webhook event");
  });

  it("sort in the order their jobs were submitted, one by one and within a batch", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) {
      const r = await submit({ queue: "ids-seq", kind: "k" });
      ids.push(r.body.id);
      // Were these ids the database's (to the millisecond), a later one would need a later millisecond.
      const answeredAt = Date.now();
      await until("the next millisecond", () => (Date.now() > answeredAt ? true : undefined), 1000, 1);
    }
    expect([...ids].sort()).toEqual(ids);

    const batch = await setup.env.http().post("/v1/batches").set("authorization", setup.client)
      .send({ jobs: Array.from({ length: 500 }, (_, i) => ({ queue: "ids-seq-b", kind: "k", payload: { i } })) });
    expect(batch.status).toBe(201);
    const rows = await setup.env.c.sql<{ i: number }[]>`SELECT (payload->>'i')::int AS i FROM jobs WHERE batch_id = ${batch.body.id} ORDER BY id`;
    expect(rows.map((r) => r.i)).toEqual(Array.from({ length: 500 }, (_, i) => i));
  });
});
