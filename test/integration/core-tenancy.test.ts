import { describe, expect, it } from "vitest";
import { completeJob, processNext, submitJob, type TestEnv, useKeys, useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("core_tenancy");
const k = useKeys(setup, {
  xClient: ["xco", "client"],
  xWorker: ["xco", "worker"],
  yClient: ["yco", "client"],
  yWorker: ["yco", "worker"],
  platformClient: ["*", "client"],
  platformWorker: ["*", "worker"],
});

const submit = (key: string, body: object) => submitJob<{ id: string; tenant: string; version: number }>(setup.env, key, body);
const expect404 = (r: { status: number; body: { code?: string }; headers: Record<string, string> }, what: string) => {
  expect(r.status, `${what}: ${JSON.stringify(r.body)}`).toBe(404);
  expect(r.headers["content-type"], what).toMatch(/^application\/problem\+json/);
  expect(r.body.code, what).toBe("not_found");
};
const jobRow = async (id: string) =>
  (await setup.env.c.sql<{ status: string; version: number; cancelRequested: boolean }[]>`
    SELECT status::text, version, cancel_requested FROM jobs WHERE id = ${id}`)[0]!;

describe("tenant isolation", () => {
  it("a client key of X gets 404 (never 403) for Y's job on GET and cancel, and does not see it in lists", async () => {
    const y = await submit(k.yClient, { queue: "iso", kind: "k" });
    expect(y.tenant).toBe("yco");
    expect404(await setup.env.http().get(`/v1/jobs/${y.id}`).set("authorization", k.xClient), "get");
    expect404(await setup.env.http().post(`/v1/jobs/${y.id}/cancel`).set("authorization", k.xClient), "cancel");
    expect404(await setup.env.http().post(`/v1/jobs/${y.id}/cancel`).set("authorization", k.xClient).set("if-match", `"${y.version}"`), "cancel if-match");
    const list = await setup.env.http().get("/v1/jobs?queue=iso").set("authorization", k.xClient);
    expect(list.status).toBe(200);
    expect(list.body.items.map((j: { id: string }) => j.id)).not.toContain(y.id);
    expect(await jobRow(y.id)).toMatchObject({ status: "queued", version: 1 });
    // Its owner sees it.
    expect((await setup.env.http().get(`/v1/jobs/${y.id}`).set("authorization", k.yClient)).status).toBe(200);
  });

  it("a worker key of X gets 404 on claim, heartbeat, complete and fail of Y's job, and changes nothing", async () => {
    const y = await submit(k.yClient, { queue: "iso2", kind: "k" });
    expect404(await setup.env.http().post(`/v1/jobs/${y.id}/claim`).set("authorization", k.xWorker).send({ workerId: "x" }), "claim queued");
    expect(await jobRow(y.id)).toMatchObject({ status: "queued", version: 1 });

    const claimed = await setup.env.http().post(`/v1/jobs/${y.id}/claim`).set("authorization", k.yWorker).send({ workerId: "y" });
    expect(claimed.status).toBe(200);
    const token = claimed.body.leaseToken as string;
    // Even holding the real lease token, X's key cannot act on Y's job.
    expect404(await setup.env.http().post(`/v1/jobs/${y.id}/heartbeat`).set("authorization", k.xWorker).send({ leaseToken: token }), "heartbeat");
    expect404(await completeJob(setup.env, k.xWorker, y.id, token), "complete");
    expect404(await setup.env.http().post(`/v1/jobs/${y.id}/fail`).set("authorization", k.xWorker).send({ leaseToken: token, error: { message: "x" } }), "fail");
    expect404(await setup.env.http().post(`/v1/jobs/${y.id}/claim`).set("authorization", k.xWorker).send({ workerId: "x" }), "claim running");
    const many = await setup.env.http().post("/v1/jobs/complete").set("authorization", k.xWorker).send({ items: [{ id: y.id, leaseToken: token }] });
    expect(many.status).toBe(200);
    expect(many.body.items).toEqual([expect.objectContaining({ id: y.id, status: 404 })]);
    expect(many.body.items[0].problem.code).toBe("not_found");
    expect(await jobRow(y.id)).toMatchObject({ status: "running", version: 2 });
    // Y's own worker still completes it.
    const done = await completeJob(setup.env, k.yWorker, y.id, token);
    expect(done.body.status).toBe("succeeded");
  });

  it("a worker key of X never claims Y's jobs via process-next; a * worker takes both", async () => {
    for (let i = 0; i < 5; i++) {
      await submit(k.yClient, { queue: "shared", kind: "k", payload: { i } });
      await submit(k.xClient, { queue: "shared", kind: "k", payload: { i } });
    }
    const x = await processNext<{ tenant: string }>(setup.env, k.xWorker, { queues: ["shared"], workerId: "x", max: 100 });
    expect(x.jobs).toHaveLength(5);
    for (const j of x.jobs) expect(j.tenant).toBe("xco");
    const again = await processNext(setup.env, k.xWorker, { queues: ["shared"], workerId: "x", max: 100 });
    expect(again.jobs).toEqual([]);

    await submit(k.xClient, { queue: "shared", kind: "k" });
    const p = await processNext<{ tenant: string }>(setup.env, k.platformWorker, { queues: ["shared"], workerId: "p", max: 100 });
    expect(p.jobs.map((j) => j.tenant).sort()).toEqual(["xco", ...Array(5).fill("yco")]);
  });

  it("a * key sees both tenants' jobs, and may act on either", async () => {
    const x = await submit(k.xClient, { queue: "both", kind: "k" });
    const y = await submit(k.yClient, { queue: "both", kind: "k" });
    for (const id of [x.id, y.id]) expect((await setup.env.http().get(`/v1/jobs/${id}`).set("authorization", k.platformClient)).status).toBe(200);
    const list = await setup.env.http().get("/v1/jobs?queue=both").set("authorization", k.platformClient);
    expect(list.body.items.map((j: { tenant: string }) => j.tenant).sort()).toEqual(["xco", "yco"]);
    const claimed = await setup.env.http().post(`/v1/jobs/${y.id}/claim`).set("authorization", k.platformWorker).send({ workerId: "p" });
    expect(claimed.status).toBe(200);
    const done = await completeJob(setup.env, k.platformWorker, y.id, claimed.body.leaseToken);
    expect(done.body.status).toBe("succeeded");
    const cancelled = await setup.env.http().post(`/v1/jobs/${x.id}/cancel`).set("authorization", k.platformClient);
    expect(cancelled.body.status).toBe("cancelled");
  });

  it("only a * key may name `tenant` in the submit body; others get 400 and nothing is written", async () => {
    const [{ n: before }] = await setup.env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs`;
    for (const tenant of ["yco", "other"]) {
      const r = await setup.env.http().post("/v1/jobs").set("authorization", k.xClient).send({ queue: "t", kind: "k", tenant });
      expect(r.status).toBe(400);
      expect(r.headers["content-type"]).toMatch(/^application\/problem\+json/);
      expect(r.body.code).toBeTypeOf("string");
    }
    const [{ n: after }] = await setup.env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs`;
    expect(after).toBe(before);

    const named = await submit(k.platformClient, { queue: "t", kind: "k", tenant: "yco" });
    expect(named.tenant).toBe("yco");
    expect((await setup.env.http().get(`/v1/jobs/${named.id}`).set("authorization", k.yClient)).status).toBe(200);
    expect404(await setup.env.http().get(`/v1/jobs/${named.id}`).set("authorization", k.xClient), "named tenant job from X");
    const dflt = await submit(k.platformClient, { queue: "t", kind: "k" });
    expect(dflt.tenant).toBe("default");
    const own = await submit(k.xClient, { queue: "t", kind: "k" });
    expect(own.tenant).toBe("xco");
  });

  it("roles: a client key cannot use worker endpoints and a worker key cannot submit (403), a bad key is 401", async () => {
    const r1 = await setup.env.http().post("/v1/process-next").set("authorization", k.xClient).send({ queues: ["q"], workerId: "w" });
    expect(r1.status).toBe(403);
    const r2 = await setup.env.http().post("/v1/jobs").set("authorization", k.xWorker).send({ queue: "q", kind: "k" });
    expect(r2.status).toBe(403);
    const r3 = await setup.env.http().get("/v1/jobs").set("authorization", "Bearer nope");
    expect(r3.status).toBe(401);
    for (const r of [r1, r2, r3]) expect(r.headers["content-type"]).toMatch(/^application\/problem\+json/);
  });
  it("authentication and roles are judged before the body: 401 or 403 whatever it holds, so the schema is not probed", async () => {
    const cases: Array<[string, string | undefined, number]> = [
      ["none", undefined, 401],
      ["unknown", "Bearer jl_nope", 401],
      ["worker key on a client route", k.xWorker, 403],
    ];
    for (const [who, auth, status] of cases) {
      const bodies: Array<[string, (r: ReturnType<ReturnType<TestEnv["http"]>["post"]>) => ReturnType<ReturnType<TestEnv["http"]>["post"]>]> = [
        ["an invalid body", (r) => r.send({ queue: "x" })],
        ["malformed JSON", (r) => r.set("content-type", "application/json").send("{")],
        ["a body over the limit", (r) => r.set("content-type", "application/json").send(JSON.stringify({ pad: "x".repeat(2 << 20) }))],
      ];
      for (const [what, send] of bodies) {
        const req = setup.env.http().post("/v1/jobs");
        const r = await send(auth ? req.set("authorization", auth) : req);
        expect({ who, what, status: r.status }).toEqual({ who, what, status });
        expect(r.headers["content-type"]).toMatch(/^application\/problem\+json/);
      }
    }
    const batch = await setup.env.http().post("/v1/batches").set("authorization", k.xWorker).send({ jobs: [] });
    expect(batch.status).toBe(403);
  });
});
