import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type TestEnv } from "../helpers/app.js";
import { reapOnce } from "../../src/worker/maintenance.js";

let env: TestEnv;
let client: string;
let worker: string;
beforeAll(async () => {
  env = await createTestEnv("jobs_lease");
  await env.app.listen({ port: 0, host: "127.0.0.1" });
  client = await env.key("acme", "client");
  worker = await env.key("acme", "worker");
});
afterAll(async () => env?.close());

const HOOK = "http://127.0.0.1:9/hook";

async function submit(queue: string, extra: object = {}) {
  const r = await env.http().post("/v1/jobs").set("authorization", client).send({ queue, kind: "k", webhookUrl: HOOK, ...extra });
  expect(r.status).toBe(201);
  return r.body.id as string;
}
async function processNext(queue: string, workerId: string, leaseSeconds = 60) {
  const r = await env.http().post("/v1/process-next").set("authorization", worker).send({ queues: [queue], workerId, leaseSeconds });
  expect(r.status).toBe(200);
  return r.body.jobs as Array<{ id: string; leaseToken: string; attempts: number; version: number }>;
}
const post = (path: string, body: object) => env.http().post(path).set("authorization", worker).send(body);
const outboxRows = async (id: string) =>
  (await env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM webhook_outbox WHERE subject_id = ${id}`)[0].n;
const dbRow = async (id: string) =>
  (await env.c.sql<{ status: string; version: number; updatedAt: Date; attempts: number; workerId: string }[]>`
    SELECT status::text, version, updated_at, attempts, worker_id FROM jobs WHERE id = ${id}`)[0]!;
const expire = (id: string) => env.c.sql`UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = ${id}`;

describe("lease fencing", () => {
  it("a lease that really expires (1 s) is reaped; the stale holder's complete is 409 and the new holder's wins", async () => {
    const id = await submit("lease1");
    const [a] = await processNext("lease1", "A", 1);
    expect(a!.id).toBe(id);
    // Poll the reaper itself: it only takes the job once the lease is in the past.
    const deadline = Date.now() + 15_000;
    let reaped = 0;
    while (reaped === 0) {
      if (Date.now() > deadline) throw new Error("lease never expired");
      reaped = await reapOnce(env.c);
      if (reaped === 0) await new Promise((r) => setTimeout(r, 50));
    }
    expect((await dbRow(id)).status).toBe("queued");
    const [b] = await processNext("lease1", "B");
    expect(b!.id).toBe(id);
    expect(b!.attempts).toBe(2);
    expect(b!.leaseToken).not.toBe(a!.leaseToken);

    const stale = await post(`/v1/jobs/${id}/complete`, { leaseToken: a!.leaseToken, result: { by: "A" } });
    expect(stale.status).toBe(409);
    expect(stale.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(stale.body.code).toBe("lease_lost");
    const won = await post(`/v1/jobs/${id}/complete`, { leaseToken: b!.leaseToken, result: { by: "B" } });
    expect(won.status).toBe(200);
    expect(won.body).toMatchObject({ status: "succeeded", result: { by: "B" }, workerId: "B", attempts: 2 });
    const after = await post(`/v1/jobs/${id}/complete`, { leaseToken: a!.leaseToken, result: { by: "A" } });
    expect(after.status).toBe(409);
    expect(after.body.code).toBe("not_running");
    expect(await outboxRows(id)).toBe(1);
  });

  it("heartbeat, fail and complete with the stale token are all 409 once another worker holds the job", async () => {
    const id = await submit("lease2");
    const [a] = await processNext("lease2", "A", 1);
    await expire(id);
    expect((await env.c.repos.jobs.reapExpired(100)).map((r) => r.id)).toContain(id);
    const [b] = await processNext("lease2", "B");
    const before = await dbRow(id);
    for (const [path, body] of [
      ["heartbeat", { leaseToken: a!.leaseToken, leaseSeconds: 600 }],
      ["fail", { leaseToken: a!.leaseToken, error: { message: "stale" } }],
      ["complete", { leaseToken: a!.leaseToken }],
    ] as const) {
      const r = await post(`/v1/jobs/${id}/${path}`, body);
      expect(r.status, path).toBe(409);
      expect(r.body.code, path).toBe("lease_lost");
    }
    // The losers changed nothing.
    expect(await dbRow(id)).toEqual(before);
    const hb = await post(`/v1/jobs/${id}/heartbeat`, { leaseToken: b!.leaseToken, leaseSeconds: 600 });
    expect(hb.status).toBe(200);
    expect(new Date(hb.body.leaseExpiresAt).getTime()).toBeGreaterThan(Date.now() + 500_000);
    expect(hb.body.cancelRequested).toBe(false);
    expect(await outboxRows(id)).toBe(0);
  });

  it("a heartbeat that lands first keeps the job from the reaper", async () => {
    const id = await submit("lease3");
    const [a] = await processNext("lease3", "A", 1);
    const hb = await post(`/v1/jobs/${id}/heartbeat`, { leaseToken: a!.leaseToken, leaseSeconds: 600 });
    expect(hb.status).toBe(200);
    expect(await env.c.repos.jobs.reapExpired(100)).toEqual([]);
    expect((await dbRow(id)).status).toBe("running");
  });

  it("complete repeated with the same token: same job, same version, one transition, one outbox row", async () => {
    const id = await submit("lease4");
    const [a] = await processNext("lease4", "A");
    const first = await post(`/v1/jobs/${id}/complete`, { leaseToken: a!.leaseToken, result: { n: 1 } });
    expect(first.status).toBe(200);
    const stored = await dbRow(id);
    expect(first.body.version).toBe(stored.version);
    // Concurrent and sequential repeats, including one with a different result: the first one stands.
    const again = await Promise.all(
      Array.from({ length: 8 }, (_, i) => post(`/v1/jobs/${id}/complete`, { leaseToken: a!.leaseToken, result: { n: i + 2 } })),
    );
    for (const r of [...again, await post(`/v1/jobs/${id}/complete`, { leaseToken: a!.leaseToken })]) {
      expect(r.status).toBe(200);
      expect(r.body).toEqual(first.body);
      expect(r.headers.etag).toBe(`"${first.body.version}"`);
    }
    expect(await dbRow(id)).toEqual(stored);
    expect(await outboxRows(id)).toBe(1);
    const transitions = await env.c.sql<{ eventType: string }[]>`SELECT event_type FROM webhook_outbox WHERE subject_id = ${id}`;
    expect(transitions.map((t) => t.eventType)).toEqual(["job.succeeded"]);
  });

  it("concurrent first completes with the same token: exactly one transition and one outbox row", async () => {
    for (let t = 0; t < 30; t++) {
      const id = await submit("lease5");
      const [a] = await processNext("lease5", "A");
      const res = await Promise.all(Array.from({ length: 6 }, () => post(`/v1/jobs/${id}/complete`, { leaseToken: a!.leaseToken })));
      expect(res.map((r) => r.status)).toEqual(Array(6).fill(200));
      expect(new Set(res.map((r) => r.body.version))).toEqual(new Set([a!.version + 1]));
      expect(await outboxRows(id)).toBe(1);
    }
  });

  it("an unknown token on a running job is 409, a token for another job is 409, an unknown job is 404", async () => {
    const id = await submit("lease6");
    const other = await submit("lease6");
    const [a, b] = [(await processNext("lease6", "A"))[0]!, (await processNext("lease6", "B"))[0]!];
    expect(new Set([a.id, b.id])).toEqual(new Set([id, other]));
    const r1 = await post(`/v1/jobs/${a.id}/complete`, { leaseToken: crypto.randomUUID() });
    expect(r1.status).toBe(409);
    const r2 = await post(`/v1/jobs/${a.id}/complete`, { leaseToken: b.leaseToken });
    expect(r2.status).toBe(409);
    const r3 = await post(`/v1/jobs/${crypto.randomUUID()}/complete`, { leaseToken: a.leaseToken });
    expect(r3.status).toBe(404);
    expect(r3.body.code).toBe("not_found");
  });
});
