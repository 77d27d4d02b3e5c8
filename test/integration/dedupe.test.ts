import { describe, expect, it } from "vitest";
import { completeJob, processNext, useTestEnv } from "../helpers/app.js";

// Deduplication windows (DESIGN.md "Time limits and deduplication", "Version 2 details").
// Real sockets: concurrent submits must reach PostgreSQL concurrently.
const setup = useTestEnv("dedupe", {}, { listen: true });
const http = () => setup.env.http();
const submit = (body: object, headers: Record<string, string> = {}) =>
  http().post("/v1/jobs").set("authorization", setup.client).set(headers).send({ kind: "k", ...body });
const live = async (queue: string, key: string) =>
  setup.env.c.sql<{ id: string }[]>`
    SELECT id FROM jobs WHERE tenant = 'acme' AND queue = ${queue} AND dedupe_key = ${key} AND status IN ('queued', 'running')`;

describe("dedupe", () => {
  it("joins the live job (200, Jobline-Deduplicated); replace debounces a queued one; a finished one no longer matches", async () => {
    const first = await submit({ queue: "d1", payload: { v: 1 }, dedupe: { key: "k1" } });
    expect(first.status).toBe(201);
    expect(first.headers["jobline-deduplicated"]).toBeUndefined();
    expect(first.body.dedupeKey).toBe("k1");

    const joined = await submit({ queue: "d1", payload: { v: 2 }, dedupe: { key: "k1" } });
    expect(joined.status).toBe(200);
    expect(joined.headers["jobline-deduplicated"]).toBe("true");
    expect(joined.body).toMatchObject({ id: first.body.id, payload: { v: 1 }, version: first.body.version });

    const runAt = new Date(Date.now() + 60_000).toISOString();
    const replaced = await submit({ queue: "d1", payload: { v: 3 }, priority: 7, runAt, dedupe: { key: "k1", replace: true } });
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ id: first.body.id, payload: { v: 3 }, priority: 7, runAt, version: first.body.version + 1 });

    // Another queue or key is another job.
    expect((await submit({ queue: "d2", dedupe: { key: "k1" } })).status).toBe(201);
    expect((await submit({ queue: "d1", dedupe: { key: "k2" } })).status).toBe(201);

    // Running: joined, and replace leaves it alone.
    await setup.env.c.sql`UPDATE jobs SET run_at = now() WHERE id = ${first.body.id}`;
    const claimed = (await processNext(setup.env, setup.worker, { queues: ["d1"], max: 5 })).jobs.find((j) => j.id === first.body.id);
    expect(claimed).toBeDefined();
    const whileRunning = await submit({ queue: "d1", payload: { v: 4 }, dedupe: { key: "k1", replace: true } });
    expect(whileRunning.status).toBe(200);
    expect(whileRunning.body).toMatchObject({ id: first.body.id, payload: { v: 3 }, status: "running" });

    const done = await completeJob(setup.env, setup.worker, first.body.id, claimed!.leaseToken);
    expect(done.status).toBe(200);
    const after = await submit({ queue: "d1", dedupe: { key: "k1" } });
    expect(after.status).toBe(201);
    expect(after.body.id).not.toBe(first.body.id);
  });

  it("with an Idempotency-Key: a replay returns the key's job; a joining submit answers the live job", async () => {
    const a = await submit({ queue: "d3", dedupe: { key: "k" } }, { "idempotency-key": "idem-a" });
    expect(a.status).toBe(201);
    const replay = await submit({ queue: "d3", dedupe: { key: "k" } }, { "idempotency-key": "idem-a" });
    expect(replay.status).toBe(200);
    expect(replay.body.id).toBe(a.body.id);
    const mismatch = await submit({ queue: "d3", payload: { other: true }, dedupe: { key: "k" } }, { "idempotency-key": "idem-a" });
    expect(mismatch.status).toBe(422);
    const joined = await submit({ queue: "d3", dedupe: { key: "k" } }, { "idempotency-key": "idem-b" });
    expect(joined.status).toBe(200);
    expect(joined.headers["jobline-deduplicated"]).toBe("true");
    expect(joined.body.id).toBe(a.body.id);
  });

  it("16 concurrent submits with one key, 100 trials: one job, every caller gets its id, one 201, no 5xx", async () => {
    for (let t = 0; t < 100; t++) {
      const key = `race-${t}`;
      const answers = await Promise.all(
        Array.from({ length: 16 }, (_, i) => submit({ queue: "d4", payload: { i }, dedupe: { key, replace: i % 2 === 0 } })),
      );
      const statuses = answers.map((r) => r.status);
      expect(statuses.filter((s) => s === 201), `trial ${t}: ${statuses}`).toHaveLength(1);
      expect(statuses.filter((s) => s === 200)).toHaveLength(15);
      const ids = new Set(answers.map((r) => r.body.id));
      expect(ids.size, `trial ${t}`).toBe(1);
      expect((await live("d4", key)).map((r) => r.id)).toEqual([...ids]);
    }
  }, 240_000);

  it("a submit racing the job's completion joins it or creates a new one, never both, never an error (50 trials)", async () => {
    let joinedCount = 0;
    let created = 0;
    for (let t = 0; t < 50; t++) {
      const key = `fin-${t}`;
      const queue = `d5-${t}`;
      const first = await submit({ queue, dedupe: { key } });
      expect(first.status).toBe(201);
      const [job] = (await processNext(setup.env, setup.worker, { queues: [queue] })).jobs;
      const [done, again] = await Promise.all([
        completeJob(setup.env, setup.worker, job!.id, job!.leaseToken),
        submit({ queue, dedupe: { key } }),
      ]);
      expect(done.status).toBe(200);
      expect([200, 201], `trial ${t}: ${again.status} ${JSON.stringify(again.body)}`).toContain(again.status);
      const liveNow = (await live(queue, key)).map((r) => r.id);
      if (again.status === 200) {
        joinedCount++;
        expect(again.body.id).toBe(first.body.id);
        expect(liveNow).toEqual([]);
      } else {
        created++;
        expect(again.body.id).not.toBe(first.body.id);
        expect(liveNow).toEqual([again.body.id]);
      }
    }
    console.log(`submit/complete race: ${joinedCount} joined, ${created} created`);
  }, 240_000);
});
