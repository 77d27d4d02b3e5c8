import { describe, expect, it } from "vitest";
import { useTestEnv } from "../helpers/app.js";

const TRIALS = 100;
const CONCURRENCY = 16;

const setup = useTestEnv("core_idempotency", {}, { listen: true });

const submit = (key: string, body: object) =>
  setup.env.http().post("/v1/jobs").set("authorization", setup.client).set("idempotency-key", key).send(body);

describe("idempotent submit", () => {
  it(`${CONCURRENCY} concurrent submits with one key, ${TRIALS} trials: one job, every caller gets its id, no 5xx`, async () => {
    const statuses = new Map<number, number>();
    for (let t = 0; t < TRIALS; t++) {
      const key = `idem-${t}`;
      // Field order varies between callers: the replay must match on the canonical body.
      const res = await Promise.all(
        Array.from({ length: CONCURRENCY }, (_, i) =>
          submit(key, i % 2 ? { queue: "idem", kind: "k", payload: { t, a: [1, 2] } } : { payload: { a: [1, 2], t }, kind: "k", queue: "idem" }),
        ),
      );
      for (const r of res) statuses.set(r.status, (statuses.get(r.status) ?? 0) + 1);
      const codes = res.map((r) => r.status).sort();
      expect(codes, `trial ${t}: ${JSON.stringify(res.map((r) => [r.status, r.body.code]))}`).toEqual([200, ...Array(CONCURRENCY - 2).fill(200), 201].sort());
      const ids = new Set(res.map((r) => r.body.id));
      expect(ids.size, `trial ${t}`).toBe(1);
      const created = res.find((r) => r.status === 201)!;
      expect(created.headers.location).toBe(`/v1/jobs/${created.body.id}`);
      for (const r of res) {
        expect(r.body).toEqual(created.body);
        expect(r.headers.etag).toBe(`"${created.body.version}"`);
      }
      const rows = await setup.env.c.sql<{ id: string }[]>`SELECT id FROM jobs WHERE idempotency_key = ${key}`;
      expect(rows.map((r) => r.id)).toEqual([created.body.id]);
    }
    console.log(`idempotency: ${TRIALS} trials x ${CONCURRENCY} submits, statuses ${JSON.stringify(Object.fromEntries(statuses))}`);
    const [{ n }] = await setup.env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs`;
    expect(n).toBe(TRIALS);
  });

  it("the same key with a different body is 422 problem+json and writes nothing", async () => {
    const first = await submit("idem-mismatch", { queue: "idem", kind: "k", payload: { a: 1 } });
    expect(first.status).toBe(201);
    for (const other of [
      { queue: "idem", kind: "k", payload: { a: 2 } },
      { queue: "idem", kind: "k2", payload: { a: 1 } },
      { queue: "idem", kind: "k", payload: { a: 1 }, priority: 3 },
    ]) {
      const r = await submit("idem-mismatch", other);
      expect(r.status).toBe(422);
      expect(r.headers["content-type"]).toMatch(/^application\/problem\+json/);
      expect(r.body.code).toBe("idempotency_mismatch");
    }
    // Concurrent mismatches against a fresh key: exactly one body wins, the other gets 422.
    for (let t = 0; t < 20; t++) {
      const key = `idem-mm-${t}`;
      const res = await Promise.all(
        Array.from({ length: 8 }, (_, i) => submit(key, { queue: "idem", kind: "k", payload: { v: i % 2 } })),
      );
      const created = res.filter((r) => r.status === 201);
      expect(created).toHaveLength(1);
      const winner = created[0]!.body;
      for (const r of res) {
        expect([200, 201, 422]).toContain(r.status);
        if (r.status === 200) expect(r.body.id).toBe(winner.id);
        if (r.status === 422) expect(r.body.code).toBe("idempotency_mismatch");
      }
      const sameBody = res.filter((r, i) => i % 2 === winner.payload.v && r.status !== 201);
      for (const r of sameBody) expect(r.status).toBe(200);
      const [{ n }] = await setup.env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs WHERE idempotency_key = ${key}`;
      expect(n).toBe(1);
    }
    const [{ n }] = await setup.env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs WHERE idempotency_key = 'idem-mismatch'`;
    expect(n).toBe(1);
  });

  it("keys are per tenant: another tenant's same key makes its own job", async () => {
    const other = await setup.env.key("globex", "client");
    const a = await submit("idem-shared", { queue: "idem", kind: "k" });
    const b = await setup.env.http().post("/v1/jobs").set("authorization", other).set("idempotency-key", "idem-shared").send({ queue: "idem", kind: "k" });
    expect(a.status).toBe(201);
    expect(b.status).toBe(201);
    expect(b.body.id).not.toBe(a.body.id);
    expect(b.body.tenant).toBe("globex");
  });
});
