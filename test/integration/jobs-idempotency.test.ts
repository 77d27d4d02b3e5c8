import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type TestEnv } from "../helpers/app.js";

let env: TestEnv;
let client: string;
beforeAll(async () => {
  env = await createTestEnv("jobs_idempotency");
  await env.app.listen({ port: 0, host: "127.0.0.1" });
  client = await env.key("acme", "client");
});
afterAll(async () => env?.close());

const submit = (key: string, body: object, auth = client) =>
  env.http().post("/v1/jobs").set("authorization", auth).set("idempotency-key", key).send(body);

describe("idempotent submit", () => {
  it("16 concurrent submits with one key, 100 trials: one job, every caller gets its id, one 201 and fifteen 200, no 5xx", async () => {
    const statuses = new Map<number, number>();
    for (let t = 0; t < 100; t++) {
      const key = `trial-${t}-${Math.random().toString(36).slice(2)}`;
      // Field order differs between callers: the request hash is over canonical JSON.
      const res = await Promise.all(
        Array.from({ length: 16 }, (_, i) =>
          submit(key, i % 2 ? { queue: "idem", kind: "k", payload: { t, a: [1, 2] } } : { payload: { a: [1, 2], t }, kind: "k", queue: "idem" }),
        ),
      );
      for (const r of res) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      const ids = new Set(res.map((r) => r.body.id));
      expect(ids.size, `trial ${t}: ${JSON.stringify(res.map((r) => [r.status, r.body.code]))}`).toBe(1);
      expect(res.filter((r) => r.status === 201)).toHaveLength(1);
      expect(res.filter((r) => r.status === 200)).toHaveLength(15);
      const rows = await env.c.sql<{ id: string }[]>`SELECT id FROM jobs WHERE tenant = 'acme' AND idempotency_key = ${key}`;
      expect(rows.map((r) => r.id)).toEqual([...ids]);
      for (const r of res) {
        expect(r.body.idempotencyKey).toBe(key);
        expect(r.headers.etag).toBe('"1"');
      }
    }
    console.log(`idempotent submits, 100 x 16: status counts ${JSON.stringify(Object.fromEntries(statuses))}`);
    expect([...statuses.keys()].filter((s) => s >= 500)).toEqual([]);
    const [{ n }] = await env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'idem'`;
    expect(n).toBe(100);
  });

  it("the same key with another body is 422 and writes nothing; with the same body it replays 200", async () => {
    const first = await submit("k-mismatch", { queue: "idem2", kind: "k", payload: { a: 1 } });
    expect(first.status).toBe(201);
    for (const other of [
      { queue: "idem2", kind: "k", payload: { a: 2 } },
      { queue: "idem2", kind: "other", payload: { a: 1 } },
      { queue: "idem2", kind: "k", payload: { a: 1 }, priority: 5 },
      { queue: "idem2", kind: "k" },
    ]) {
      const r = await submit("k-mismatch", other);
      expect(r.status, JSON.stringify(other)).toBe(422);
      expect(r.headers["content-type"]).toMatch(/application\/problem\+json/);
      expect(r.body.code).toBe("idempotency_mismatch");
    }
    const replay = await submit("k-mismatch", { kind: "k", payload: { a: 1 }, queue: "idem2" });
    expect(replay.status).toBe(200);
    expect(replay.body).toEqual(first.body);
    const [{ n }] = await env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'idem2'`;
    expect(n).toBe(1);
  });

  it("concurrent submits with one key and different bodies: one job, the others 200 (same body) or 422, never 5xx", async () => {
    for (let t = 0; t < 20; t++) {
      const key = `mixed-${t}`;
      const res = await Promise.all(Array.from({ length: 12 }, (_, i) => submit(key, { queue: "idem3", kind: "k", payload: { v: i % 2 } })));
      expect(res.filter((r) => r.status >= 500)).toEqual([]);
      const created = res.filter((r) => r.status === 201);
      expect(created).toHaveLength(1);
      const winner = created[0]!.body;
      for (const [i, r] of res.entries()) {
        if (i % 2 === winner.payload.v) expect([200, 201]).toContain(r.status);
        else expect(r.status).toBe(422);
      }
    }
    const [{ n }] = await env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'idem3'`;
    expect(n).toBe(20);
  });

  it("keys are per tenant: the same key in two tenants makes two jobs", async () => {
    const other = await env.key("globex", "client");
    const a = await submit("shared-key", { queue: "idem4", kind: "k" });
    const b = await submit("shared-key", { queue: "idem4", kind: "k" }, other);
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(a.body.id).not.toBe(b.body.id);
    expect(b.body.tenant).toBe("globex");
  });

  it("a replay returns the job as it is now, still 200 with the same id", async () => {
    const a = await submit("later", { queue: "idem5", kind: "k" });
    const worker = await env.key("acme", "worker");
    const pn = await env.http().post("/v1/process-next").set("authorization", worker).send({ queues: ["idem5"], workerId: "w" });
    expect(pn.body.jobs[0].id).toBe(a.body.id);
    const b = await submit("later", { queue: "idem5", kind: "k" });
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    expect(b.body.status).toBe("running");
    expect(b.headers.etag).toBe(`"${b.body.version}"`);
  });
});
