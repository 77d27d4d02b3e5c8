import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type TestEnv } from "../helpers/app.js";

let env: TestEnv;
const k = { xClient: "", xWorker: "", yClient: "", yWorker: "", star: "", starWorker: "", xAdmin: "" };
beforeAll(async () => {
  env = await createTestEnv("jobs_tenancy");
  k.xClient = await env.key("x", "client");
  k.xWorker = await env.key("x", "worker");
  k.xAdmin = await env.key("x", "admin");
  k.yClient = await env.key("y", "client");
  k.yWorker = await env.key("y", "worker");
  k.star = await env.key("*", "client", "worker");
  k.starWorker = await env.key("*", "worker");
});
afterAll(async () => env?.close());

const submit = async (auth: string, body: object) => {
  const r = await env.http().post("/v1/jobs").set("authorization", auth).send({ kind: "k", ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as { id: string; tenant: string; version: number };
};
const snapshot = async (id: string) => (await env.c.sql`SELECT * FROM jobs WHERE id = ${id}`)[0];

describe("tenancy", () => {
  it("tenant X's keys get 404 for tenant Y's job on every job endpoint, and change nothing", async () => {
    const queued = await submit(k.yClient, { queue: "ty" });
    const running = await submit(k.yClient, { queue: "ty-run" });
    const pn = await env.http().post("/v1/process-next").set("authorization", k.yWorker).send({ queues: ["ty-run"], workerId: "y" });
    const token = pn.body.jobs[0].leaseToken as string;
    const before = [await snapshot(queued.id), await snapshot(running.id)];

    const attempts: Array<[string, () => Promise<{ status: number; body: { code?: string }; headers: Record<string, string> }>]> = [];
    for (const auth of [k.xClient, k.xAdmin]) {
      for (const id of [queued.id, running.id]) {
        attempts.push([`GET ${id}`, () => env.http().get(`/v1/jobs/${id}`).set("authorization", auth)]);
        attempts.push([`cancel ${id}`, () => env.http().post(`/v1/jobs/${id}/cancel`).set("authorization", auth)]);
        attempts.push([`cancel * ${id}`, () => env.http().post(`/v1/jobs/${id}/cancel`).set("authorization", auth).set("if-match", "*")]);
      }
    }
    for (const auth of [k.xWorker, k.xAdmin]) {
      attempts.push(["claim", () => env.http().post(`/v1/jobs/${queued.id}/claim`).set("authorization", auth).send({ workerId: "x" })]);
      attempts.push(["heartbeat", () => env.http().post(`/v1/jobs/${running.id}/heartbeat`).set("authorization", auth).send({ leaseToken: token })]);
      attempts.push(["fail", () => env.http().post(`/v1/jobs/${running.id}/fail`).set("authorization", auth).send({ leaseToken: token, error: { message: "x" } })]);
      attempts.push(["complete", () => env.http().post(`/v1/jobs/${running.id}/complete`).set("authorization", auth).send({ leaseToken: token })]);
    }
    for (const [name, call] of attempts) {
      const r = await call();
      expect(r.status, name).toBe(404);
      expect(r.headers["content-type"], name).toMatch(/application\/problem\+json/);
      expect(r.body.code, name).toBe("not_found");
    }
    // The bulk complete answers per item, with the same 404.
    const bulk = await env.http().post("/v1/jobs/complete").set("authorization", k.xWorker).send({ items: [{ id: running.id, leaseToken: token }] });
    expect(bulk.status).toBe(200);
    expect(bulk.body.items[0]).toMatchObject({ id: running.id, status: 404 });
    expect([await snapshot(queued.id), await snapshot(running.id)]).toEqual(before);

    // X's list does not show Y's jobs.
    const list = await env.http().get("/v1/jobs?limit=500").set("authorization", k.xClient);
    expect(list.body.items.filter((j: { tenant: string }) => j.tenant !== "x")).toEqual([]);
  });

  it("a worker key of X never claims Y's jobs through process-next", async () => {
    for (let i = 0; i < 20; i++) await submit(k.yClient, { queue: "shared", payload: { i } });
    await submit(k.xClient, { queue: "shared" });
    const pn = await env.http().post("/v1/process-next").set("authorization", k.xWorker).send({ queues: ["shared"], workerId: "x", max: 100 });
    expect(pn.body.jobs.map((j: { tenant: string }) => j.tenant)).toEqual(["x"]);
    const again = await env.http().post("/v1/process-next").set("authorization", k.xWorker).send({ queues: ["shared"], workerId: "x", max: 100 });
    expect(again.body.jobs).toEqual([]);
    const [{ n }] = await env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'shared' AND tenant = 'y' AND status = 'queued'`;
    expect(n).toBe(20);
  });

  it("a platform key (tenant *) sees, cancels and claims both tenants' jobs", async () => {
    const x = await submit(k.xClient, { queue: "both" });
    const y = await submit(k.yClient, { queue: "both" });
    for (const j of [x, y]) {
      const g = await env.http().get(`/v1/jobs/${j.id}`).set("authorization", k.star);
      expect(g.status).toBe(200);
      expect(g.body.tenant).toBe(j.tenant);
    }
    const list = await env.http().get("/v1/jobs?queue=both").set("authorization", k.star);
    expect(new Set(list.body.items.map((j: { tenant: string }) => j.tenant))).toEqual(new Set(["x", "y"]));
    const pn = await env.http().post("/v1/process-next").set("authorization", k.starWorker).send({ queues: ["both"], workerId: "p", max: 10 });
    expect(new Set(pn.body.jobs.map((j: { tenant: string }) => j.tenant))).toEqual(new Set(["x", "y"]));
    for (const j of pn.body.jobs) {
      const d = await env.http().post(`/v1/jobs/${j.id}/complete`).set("authorization", k.starWorker).send({ leaseToken: j.leaseToken });
      expect(d.status).toBe(200);
    }
    const z = await submit(k.yClient, { queue: "both2" });
    const c = await env.http().post(`/v1/jobs/${z.id}/cancel`).set("authorization", k.star);
    expect(c.body.status).toBe("cancelled");
  });

  it("only a * key may name tenant in the submit body", async () => {
    const named = await submit(k.star, { queue: "named", tenant: "y" });
    expect(named.tenant).toBe("y");
    expect((await submit(k.star, { queue: "named" })).tenant).toBe("default");
    // A tenant key may name its own tenant, nothing else.
    expect((await submit(k.xClient, { queue: "named", tenant: "x" })).tenant).toBe("x");
    const before = (await env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs`)[0].n;
    for (const [auth, tenant] of [[k.xClient, "y"], [k.xAdmin, "y"], [k.xClient, "default"], [k.star, "*"], [k.star, ""]] as const) {
      const r = await env.http().post("/v1/jobs").set("authorization", auth).send({ queue: "named", kind: "k", tenant });
      expect(r.status, `${tenant}`).toBe(400);
      expect(r.headers["content-type"]).toMatch(/application\/problem\+json/);
    }
    expect((await env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs`)[0].n).toBe(before);
    // Y sees the job a platform key filed for it.
    expect((await env.http().get(`/v1/jobs/${named.id}`).set("authorization", k.yClient)).status).toBe(200);
  });

  it("roles: a client key cannot use worker endpoints and a worker key cannot submit (403); no key is 401", async () => {
    const j = await submit(k.xClient, { queue: "roles" });
    const w = await env.http().post(`/v1/jobs/${j.id}/claim`).set("authorization", k.xClient).send({ workerId: "c" });
    expect(w.status).toBe(403);
    const pn = await env.http().post("/v1/process-next").set("authorization", k.xClient).send({ queues: ["roles"], workerId: "c" });
    expect(pn.status).toBe(403);
    const s = await env.http().post("/v1/jobs").set("authorization", k.xWorker).send({ queue: "roles", kind: "k" });
    expect(s.status).toBe(403);
    const none = await env.http().get(`/v1/jobs/${j.id}`);
    expect(none.status).toBe(401);
    expect(none.body.code).toBe("unauthorized");
    expect((await snapshot(j.id))!.status).toBe("queued");
  });
});
