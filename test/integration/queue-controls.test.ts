import { describe, expect, it } from "vitest";
import { createJoblineClient, JoblineApiError, queueControls } from "../../clients/typescript/src/index.js";
import { queuesCommand } from "../../src/cliQueues.js";
import { UsageError } from "../../src/cliRemote.js";
import { completeJob, processNext, submitJob, useKeys, useTestEnv } from "../helpers/app.js";

// Queue controls over HTTP: the routes, their errors and tenant isolation, and each limit as
// process-next and claim-by-id see it. The races are in queue-controls-races.test.ts.

const t = useTestEnv("queue_controls", { JOBLINE_REAPER_INTERVAL_MS: 600_000 });
const k = useKeys(t, { acme: ["acme", "admin"], other: ["other", "admin"] });

const submit = async (queue: string, body: Record<string, unknown> = {}) => (await submitJob(t.env, k.acme, { queue, kind: "k", payload: {}, ...body })).id;
const poll = async (queue: string, max = 10, waitMs = 0) => (await processNext(t.env, t.worker, { queues: [queue], max, waitMs })).jobs;
const complete = (j: { id: string; leaseToken: string }) => completeJob(t.env, t.worker, j.id, j.leaseToken);
const put = (queue: string, body: object, key = k.acme, query = "") =>
  t.env.http().put(`/v1/queues/${queue}${query}`).set("authorization", key).send(body);

describe("queue settings routes", () => {
  it("PUT replaces, GET reads, pause and resume are idempotent; a platform key names ?tenant=", async () => {
    await submit("qs1");
    const r = await put("qs1", { concurrency: 3, groupConcurrency: 1, rateLimit: { limit: 10, periodSeconds: 2 } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      queue: "qs1",
      tenant: "acme",
      settings: { paused: false, concurrency: 3, groupConcurrency: 1, rateLimit: { limit: 10, periodSeconds: 2 }, defaultTimeoutSeconds: null },
      counts: { queued: 1 },
    });
    const p1 = await t.env.http().post("/v1/queues/qs1/pause").set("authorization", k.acme);
    const p2 = await t.env.http().post("/v1/queues/qs1/pause").set("authorization", k.acme);
    expect([p1.status, p2.status]).toEqual([200, 200]);
    expect(p2.body.settings).toMatchObject({ paused: true, concurrency: 3 });
    expect(p2.body.waitingBecause).toContain("paused");
    const g = await t.env.http().get("/v1/queues/qs1?tenant=acme").set("authorization", t.env.admin);
    expect(g.status).toBe(200);
    expect(g.body.settings.paused).toBe(true);
    const list = await t.env.http().get("/v1/queues").set("authorization", t.client);
    expect(list.body.items.find((i: { queue: string }) => i.queue === "qs1").waitingBecause).toEqual(["paused"]);
    const res = await t.env.http().post("/v1/queues/qs1/resume?tenant=acme").set("authorization", t.env.admin);
    expect(res.status).toBe(200);
    expect(res.body.settings.paused).toBe(false);
    // PUT replaces the whole object: absent fields are no limit.
    const r2 = await put("qs1", { concurrency: 2 });
    expect(r2.body.settings).toEqual({ paused: false, concurrency: 2, groupConcurrency: null, rateLimit: null, defaultTimeoutSeconds: null });
  });

  it("errors are problem+json: limits >= 1, unknown fields, platform key without ?tenant=, client role", async () => {
    for (const body of [{ concurrency: 0 }, { groupConcurrency: -1 }, { rateLimit: { limit: 0, periodSeconds: 1 } }, { rateLimit: { limit: 1 } }, { bogus: 1 }, { concurrency: "5" }]) {
      const r = await put("qs2", body);
      expect(r.status, JSON.stringify(body)).toBe(400);
      expect(r.headers["content-type"]).toMatch(/application\/problem\+json/);
    }
    expect((await put("qs2", { concurrency: 1 }, t.env.admin)).status).toBe(400);
    expect((await put("qs2", { concurrency: 1 }, t.client)).status).toBe(403);
    expect((await t.env.http().get("/v1/queues/qs2").set("authorization", k.acme)).status).toBe(404);
  });

  it("waitingBecause also says scheduled and batchPreparing, in GET /v1/queues and GET /v1/queues/{queue}", async () => {
    await submit("wb1", { runAt: new Date(Date.now() + 3_600_000).toISOString() });
    const b = await t.env.http().post("/v1/batches").set("authorization", k.acme).send({ jobs: [{ queue: "wb1", kind: "k", payload: {} }], seal: false });
    expect(b.status).toBe(201);
    expect((await t.env.http().get("/v1/queues/wb1").set("authorization", k.acme)).body.waitingBecause).toEqual(["scheduled", "batchPreparing"]);
    const list = await t.env.http().get("/v1/queues").set("authorization", t.client);
    expect(list.body.items.find((i: { queue: string }) => i.queue === "wb1").waitingBecause).toEqual(["scheduled", "batchPreparing"]);
  });

  it("tenant isolation: another tenant's queue is 404 and its PUT changes only its own settings", async () => {
    await submit("iso");
    expect((await put("iso", { concurrency: 1 })).status).toBe(200);
    expect((await t.env.http().get("/v1/queues/iso").set("authorization", k.other)).status).toBe(404);
    expect((await t.env.http().get("/v1/queues/iso?tenant=acme").set("authorization", k.other)).status).toBe(404);
    expect((await put("iso", { paused: true }, k.other, "?tenant=acme")).status).toBe(404);
    expect((await t.env.http().post("/v1/queues/iso/pause?tenant=acme").set("authorization", k.other)).status).toBe(404);
    expect((await put("iso", { paused: true }, k.other)).status).toBe(200); // other's own (other, iso)
    const mine = await t.env.http().get("/v1/queues/iso").set("authorization", k.acme);
    expect(mine.body.settings).toMatchObject({ paused: false, concurrency: 1 });
  });
});

describe("limits in process-next and claim-by-id", () => {
  it("paused: nothing starts, claim-by-id is 409 queue_paused; resume: it runs", async () => {
    const id = await submit("p1");
    await t.env.http().post("/v1/queues/p1/pause").set("authorization", k.acme);
    expect(await poll("p1")).toEqual([]);
    const c = await t.env.http().post(`/v1/jobs/${id}/claim`).set("authorization", t.worker).send({ workerId: "w" });
    expect(c.status).toBe(409);
    expect(c.body.code).toBe("queue_paused");
    await t.env.http().post("/v1/queues/p1/resume").set("authorization", k.acme);
    expect((await poll("p1")).map((j) => j.id)).toEqual([id]);
  });

  it("concurrency: at most N running; claim-by-id beyond is 409 concurrency_limited; a completion frees a slot", async () => {
    await put("c1", { concurrency: 2 });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await submit("c1"));
    const first = await poll("c1", 10);
    expect(first).toHaveLength(2);
    expect(await poll("c1", 10)).toEqual([]);
    const c = await t.env.http().post(`/v1/jobs/${ids[4]}/claim`).set("authorization", t.worker).send({ workerId: "w" });
    expect(c.status).toBe(409);
    expect(c.body.code).toBe("concurrency_limited");
    expect((await t.env.http().get("/v1/queues/c1").set("authorization", k.acme)).body.waitingBecause).toEqual(["concurrency"]);
    expect((await complete(first[0]!)).status).toBe(200);
    expect(await poll("c1", 10)).toHaveLength(1);
  });

  it("groupConcurrency 1: one per key, in order, a failed-and-requeued job keeps its key's turn; a non-head claim-by-id is 409", async () => {
    await put("g1", { groupConcurrency: 1 });
    const a = [await submit("g1", { groupKey: "A" }), await submit("g1", { groupKey: "A" })];
    const b = await submit("g1", { groupKey: "B" });
    const got = await poll("g1", 10);
    expect(got.map((j) => j.id).sort()).toEqual([a[0], b].sort());
    const c = await t.env.http().post(`/v1/jobs/${a[1]}/claim`).set("authorization", t.worker).send({ workerId: "w" });
    expect(c.body.code).toBe("concurrency_limited");
    // The head of A fails with a retry: requeued (due now), it still holds A's turn.
    const ja = got.find((j) => j.id === a[0])!;
    const f = await t.env.http().post(`/v1/jobs/${ja.id}/fail`).set("authorization", t.worker).send({ leaseToken: ja.leaseToken, error: { message: "x" }, retryAfterSeconds: 0 });
    expect(f.body.status).toBe("queued");
    const again = await poll("g1", 10);
    expect(again.map((j) => j.id)).toEqual([a[0]]);
    expect((await complete(again[0]!)).status).toBe(200);
    expect((await poll("g1", 10)).map((j) => j.id)).toEqual([a[1]]);
  });

  it("defaultTimeoutSeconds sets the attempt's deadline in every claim path; the job's own timeoutSeconds wins", async () => {
    type Claimed = { id: string; startedAt: string; deadlineAt: string | null };
    const secondsLeft = (j: Claimed) => Math.round((Date.parse(j.deadlineAt!) - Date.parse(j.startedAt)) / 1000);
    // Only a default: no limit, so the free claim takes the queue. With a limit: the gated one.
    expect((await put("dt1", { defaultTimeoutSeconds: 30 })).status).toBe(200);
    expect((await put("dt2", { concurrency: 5, defaultTimeoutSeconds: 40 })).status).toBe(200);
    expect(await t.env.c.repos.queues.cappedQueues()).not.toContain("dt1");
    const own = await submit("dt1", { timeoutSeconds: 7 });
    await submit("dt1");
    const free = (await poll("dt1")) as unknown as Claimed[];
    expect(free.map((j) => [j.id === own, secondsLeft(j)]).sort()).toEqual([[false, 30], [true, 7]]);
    await submit("dt2");
    expect(((await poll("dt2")) as unknown as Claimed[]).map(secondsLeft)).toEqual([40]);
    for (const queue of ["dt1", "dt2"]) {
      const id = await submit(queue);
      const c = await t.env.http().post(`/v1/jobs/${id}/claim`).set("authorization", t.worker).send({ workerId: "w" });
      expect(c.status, queue).toBe(200);
      expect(secondsLeft(c.body), queue).toBe(queue === "dt1" ? 30 : 40);
    }
  });

  it("rate limit: at most `limit` starts per window; claim-by-id beyond is 409 rate_limited", async () => {
    await put("r1", { rateLimit: { limit: 3, periodSeconds: 60 } });
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push(await submit("r1"));
    const got = await poll("r1", 2);
    expect(got).toHaveLength(2);
    for (const j of got) await complete(j);
    expect(await poll("r1", 10)).toHaveLength(1);
    expect(await poll("r1", 10)).toEqual([]);
    const left = ids.find((i) => !got.some((g) => g.id === i))!;
    const c = await t.env.http().post(`/v1/jobs/${ids[4]}/claim`).set("authorization", t.worker).send({ workerId: "w" });
    expect(c.status).toBe(409);
    expect(["rate_limited", "not_queued"]).toContain(c.body.code);
    expect(left).toBeTruthy();
    expect((await t.env.http().get("/v1/queues/r1").set("authorization", k.acme)).body.waitingBecause).toEqual(["rateLimit"]);
  });

  it("a long poll on a full queue is woken by a completion that frees a slot, and by resume (not its timer)", async () => {
    await put("w1", { concurrency: 1 });
    await submit("w1");
    await submit("w1");
    const [held] = await poll("w1");
    expect(await poll("w1")).toEqual([]);
    // What a poll waits on after its empty claim; 20 s unless something announces the queue.
    const woken = (queue: string) => {
      const t0 = Date.now();
      return t.env.c.notifier.wait([queue], 20_000, undefined, t.env.c.notifier.mark()).then(() => Date.now() - t0);
    };
    const w1 = woken("w1");
    expect((await complete(held!)).status).toBe(200);
    expect(await w1).toBeLessThan(15_000);
    expect(await poll("w1")).toHaveLength(1);

    await t.env.http().post("/v1/queues/w2/pause").set("authorization", k.acme);
    await submit("w2");
    expect(await poll("w2")).toEqual([]);
    const w2 = woken("w2");
    await t.env.http().post("/v1/queues/w2/resume").set("authorization", k.acme);
    expect(await w2).toBeLessThan(15_000);
    expect(await poll("w2")).toHaveLength(1);
  });

  it("a long poll held back by a batch job's requeued retry (its key's turn) is woken by the batch cancel", async () => {
    await put("w3", { groupConcurrency: 1 });
    const b = await t.env.http().post("/v1/batches").set("authorization", k.acme).send({ jobs: [{ queue: "w3", kind: "k", payload: {}, groupKey: "A" }] });
    expect(b.status).toBe(201);
    const next = await submit("w3", { groupKey: "A" });
    const [held] = await poll("w3");
    const f = await t.env.http().post(`/v1/jobs/${held!.id}/fail`).set("authorization", t.worker)
      .send({ leaseToken: held!.leaseToken, error: { message: "x" }, retryable: true, retryAfterSeconds: 3600 });
    expect(f.body.status).toBe("queued");
    // The requeued batch job keeps key A's turn: the key's next job waits.
    expect(await poll("w3")).toEqual([]);
    // 20 s unless something announces the queue (a poll's own wait re-checks each second).
    const woken = t.env.c.notifier.wait(["w3"], 20_000, undefined, t.env.c.notifier.mark());
    const c = await t.env.http().post(`/v1/batches/${b.body.id}/cancel`).set("authorization", k.acme);
    expect(c.status).toBe(200);
    expect(await woken).toMatchObject({ queue: "w3" });
    expect((await poll("w3")).map((j) => j.id)).toEqual([next]);
  });
});

describe("SDK and CLI", () => {
  it("queueControls: set, get, pause, resume; errors throw JoblineApiError", async () => {
    const address = await t.env.app.listen({ host: "127.0.0.1", port: 0 });
    const qc = queueControls(createJoblineClient({ baseUrl: address, apiKey: k.acme }));
    expect((await qc.set("sdkq", { concurrency: 4, rateLimit: { limit: 5, periodSeconds: 1 } })).settings).toMatchObject({ concurrency: 4 });
    expect((await qc.pause("sdkq")).settings.paused).toBe(true);
    expect((await qc.get("sdkq")).settings).toMatchObject({ paused: true, concurrency: 4, rateLimit: { limit: 5, periodSeconds: 1 } });
    expect((await qc.resume("sdkq")).settings.paused).toBe(false);
    await expect(qc.set("sdkq", { concurrency: 0 })).rejects.toBeInstanceOf(JoblineApiError);
    await expect(qc.get("sdkq", "other")).rejects.toMatchObject({ status: 404 });
  });

  it("jobline queues set / pause / resume / get", async () => {
    const address = await t.env.app.listen({ host: "127.0.0.1", port: 0 }).catch(() => `http://127.0.0.1:${(t.env.app.server.address() as { port: number }).port}`);
    const saved = { url: process.env.JOBLINE_URL, key: process.env.JOBLINE_API_KEY };
    process.env.JOBLINE_URL = address;
    process.env.JOBLINE_API_KEY = k.acme.replace(/^Bearer /, "");
    const write = process.stdout.write;
    process.stdout.write = (() => true) as never;
    try {
      expect(await queuesCommand("set", "cliq", { concurrency: "5", groupConcurrency: "1", rateLimit: "100/60" })).toBe(0);
      expect(await queuesCommand("pause", "cliq", {})).toBe(0);
      expect((await t.env.c.repos.queues.get("cliq", "acme"))).toMatchObject({ paused: true, concurrency: 5, groupConcurrency: 1, rateLimit: { limit: 100, periodSeconds: 60 } });
      expect(await queuesCommand("resume", "cliq", {})).toBe(0);
      expect(await queuesCommand("get", "cliq", {})).toBe(0);
      expect((await t.env.c.repos.queues.get("cliq", "acme"))?.paused).toBe(false);
      await expect(queuesCommand("set", "cliq", { rateLimit: "100" })).rejects.toBeInstanceOf(UsageError);
      await expect(queuesCommand("set", "cliq", { concurrency: "0" })).rejects.toBeInstanceOf(UsageError);
    } finally {
      process.stdout.write = write;
      process.env.JOBLINE_URL = saved.url;
      process.env.JOBLINE_API_KEY = saved.key;
      if (saved.url === undefined) delete process.env.JOBLINE_URL;
      if (saved.key === undefined) delete process.env.JOBLINE_API_KEY;
    }
  });
});
