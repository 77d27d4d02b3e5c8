import { describe, expect, it } from "vitest";
import { useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("batches_api");

const jobsOf = (n: number, queue = "bq") => Array.from({ length: n }, (_, i) => ({ queue, kind: "k", payload: { i } }));
const post = (path: string, body?: object, auth = setup.client) => {
  const r = setup.env.http().post(path).set("authorization", auth);
  return body === undefined ? r : r.send(body);
};
const get = (path: string, auth = setup.client) => setup.env.http().get(path).set("authorization", auth);
const claimAll = (queue: string) =>
  setup.env.c.services.jobs.claimNext({ queues: [queue], scope: "acme", workerId: "w", leaseSeconds: 60, max: 100, waitMs: 0 });
const batchEvents = async (id: string) =>
  setup.env.c.sql<{ generation: number; data: { status: string } }[]>`
    SELECT generation, data FROM webhook_outbox WHERE subject_id = ${id} AND event_type = 'batch.completed' ORDER BY generation`;

describe("batch HTTP contract", () => {
  it("creates a sealed batch in one request, with counts, Location and jobs listed by batchId", async () => {
    const res = await post("/v1/batches", { jobs: jobsOf(3) });
    expect(res.status).toBe(201);
    expect(res.headers.location).toBe(`/v1/batches/${res.body.id}`);
    expect(res.body).toMatchObject({
      tenant: "acme",
      status: "pending",
      total: 3,
      counts: { queued: 3, running: 0, succeeded: 0, failed: 0, cancelled: 0 },
      generation: 1,
      cancelRequested: false,
      webhookUrl: null,
      finishedAt: null,
    });
    expect(res.body.sealedAt).not.toBeNull();
    const got = await get(`/v1/batches/${res.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body.counts.queued).toBe(3);
    expect(got.headers.etag).toBe(`"${got.body.version}"`);

    const listed = await get(`/v1/jobs?batchId=${res.body.id}&limit=500`);
    expect(listed.status).toBe(200);
    expect(listed.body.items).toHaveLength(3);
    expect(listed.body.items.every((j: { batchId: string }) => j.batchId === res.body.id)).toBe(true);

    expect((await get(`/v1/batches/${res.body.id}`, await setup.env.key("other", "client"))).status).toBe(404);
    expect((await get(`/v1/batches/${res.body.id}`, setup.env.admin)).status).toBe(200);
    expect((await get("/v1/batches/00000000-0000-4000-8000-000000000000")).status).toBe(404);
  });

  it("keeps an open batch's jobs unclaimable until seal; seal is idempotent; adding after it is 409", async () => {
    const open = await post("/v1/batches", { jobs: jobsOf(2, "open_q"), seal: false });
    expect(open.status).toBe(201);
    expect(open.body.status).toBe("preparing");
    const id = open.body.id as string;
    const added = await post(`/v1/batches/${id}/jobs`, { jobs: jobsOf(3, "open_q") });
    expect(added.status).toBe(201);
    expect(added.body).toEqual({ added: 3 });
    expect(await claimAll("open_q")).toHaveLength(0);
    // A claim by id is refused too.
    const [one] = await setup.env.c.sql<{ id: string }[]>`SELECT id FROM jobs WHERE batch_id = ${id} LIMIT 1`;
    const byId = await post(`/v1/jobs/${one!.id}/claim`, { workerId: "w" }, setup.worker);
    expect(byId.status).toBe(409);

    const sealed = await post(`/v1/batches/${id}/seal`);
    expect(sealed.status).toBe(200);
    expect(sealed.body).toMatchObject({ status: "pending", total: 5, counts: { queued: 5 } });
    const again = await post(`/v1/batches/${id}/seal`);
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(sealed.body.version);
    const late = await post(`/v1/batches/${id}/jobs`, { jobs: jobsOf(1, "open_q") });
    expect(late.status).toBe(409);
    expect(late.body.code).toBe("batch_sealed");
    expect((await claimAll("open_q")).length).toBe(5);
    expect((await get(`/v1/batches/${id}`)).body).toMatchObject({ status: "running", counts: { running: 5, queued: 0 } });
    expect((await post("/v1/batches/00000000-0000-4000-8000-000000000000/seal")).status).toBe(404);
    expect((await post("/v1/batches/00000000-0000-4000-8000-000000000000/jobs", { jobs: jobsOf(1) })).status).toBe(404);
  });

  it("finalises at seal a batch that is empty or whose jobs all finished while it was open, with one event", async () => {
    // A sealed batch of nothing is refused; an open one sealed empty completes at once.
    expect((await post("/v1/batches", { jobs: [] })).status).toBe(400);
    const opened = await post("/v1/batches", { jobs: [], seal: false, webhookUrl: "https://example.com/hook" });
    expect(opened.status).toBe(201);
    const empty = await post(`/v1/batches/${opened.body.id}/seal`);
    expect(empty.status).toBe(200);
    expect(empty.body.status).toBe("succeeded");
    expect(empty.body.finishedAt).not.toBeNull();
    expect(await batchEvents(empty.body.id)).toHaveLength(1);

    const open = await post("/v1/batches", { jobs: jobsOf(2, "fin_q"), seal: false, webhookUrl: "https://example.com/hook" });
    const ids = await setup.env.c.sql<{ id: string }[]>`SELECT id FROM jobs WHERE batch_id = ${open.body.id}`;
    for (const j of ids) expect((await post(`/v1/jobs/${j.id}/cancel`, {})).status).toBe(200);
    expect((await get(`/v1/batches/${open.body.id}`)).body.status).toBe("preparing");
    expect(await batchEvents(open.body.id)).toHaveLength(0);
    const sealed = await post(`/v1/batches/${open.body.id}/seal`);
    expect(sealed.status).toBe(200);
    expect(sealed.body).toMatchObject({ status: "cancelled", counts: { cancelled: 2 } });
    const events = await batchEvents(open.body.id);
    expect(events).toHaveLength(1);
    expect(events[0]!.data.status).toBe("cancelled");
    // Sealing a cancelled batch is a conflict.
    expect((await post(`/v1/batches/${open.body.id}/seal`)).status).toBe(409);
  });

  it("refuses more than 10,000 jobs or a payload over 256 KiB with 413, writing nothing", async () => {
    const before = await setup.env.c.sql`SELECT count(*)::int AS n FROM batches`;
    const many = await post("/v1/batches", { jobs: Array.from({ length: 10_001 }, () => ({ queue: "q", kind: "k" })) });
    expect(many.status).toBe(413);
    expect(many.headers["content-type"]).toMatch(/application\/problem\+json/);
    const big = await post("/v1/batches", { jobs: [{ queue: "q", kind: "k", payload: { s: "x".repeat(256 * 1024) } }] });
    expect(big.status).toBe(413);
    expect(big.body.code).toBe("payload_too_large");
    const open = await post("/v1/batches", { jobs: [], seal: false });
    const bigAdd = await post(`/v1/batches/${open.body.id}/jobs`, { jobs: [{ queue: "q", kind: "k", payload: "y".repeat(300 * 1024) }] });
    expect(bigAdd.status).toBe(413);
    expect((await get(`/v1/batches/${open.body.id}`)).body.total).toBe(0);
    const after = await setup.env.c.sql`SELECT count(*)::int AS n FROM batches`;
    expect(after[0]!.n).toBe(before[0]!.n + 1);
    expect((await post("/v1/batches", { jobs: [{ queue: "q", kind: "k", tenant: "x" }] })).status).toBe(400);
    expect((await post("/v1/batches", { jobs: "nope" })).status).toBe(400);
    expect((await post(`/v1/batches/${open.body.id}/jobs`, { jobs: [] })).status).toBe(400);
  });

  it("accepts a batch body over the global 1 MiB limit, up to 32 MiB", async () => {
    const jobs = Array.from({ length: 100 }, (_, i) => ({ queue: "wide_q", kind: "k", payload: { i, s: "z".repeat(20_000) } }));
    const res = await post("/v1/batches", { jobs });
    expect(res.status).toBe(201);
    expect(res.body.total).toBe(100);
    const open = await post("/v1/batches", { jobs: [], seal: false });
    expect((await post(`/v1/batches/${open.body.id}/jobs`, { jobs })).status).toBe(201);
    const huge = await setup.env.http().post("/v1/batches").set("authorization", setup.client).set("content-type", "application/json")
      .send(`{"jobs":[{"queue":"q","kind":"k","payload":"${"h".repeat(33 * 1024 * 1024)}"}]}`);
    expect(huge.status).toBe(413);
    // Other routes keep the 1 MiB limit.
    expect((await post("/v1/jobs", { queue: "q", kind: "k", payload: { s: "z".repeat(1_100_000) } })).status).toBe(413);
  });

  it("lets only a platform key name the tenant", async () => {
    expect((await post("/v1/batches", { tenant: "other", jobs: jobsOf(1) })).status).toBe(400);
    const res = await post("/v1/batches", { tenant: "other", jobs: jobsOf(1, "plat_q") }, setup.env.admin);
    expect(res.status).toBe(201);
    expect(res.body.tenant).toBe("other");
    const [j] = await setup.env.c.sql<{ tenant: string }[]>`SELECT tenant FROM jobs WHERE batch_id = ${res.body.id}`;
    expect(j!.tenant).toBe("other");
    // Jobs added by a platform key belong to the batch's tenant.
    const open = await post("/v1/batches", { tenant: "other", jobs: [], seal: false }, setup.env.admin);
    expect((await post(`/v1/batches/${open.body.id}/jobs`, { jobs: jobsOf(1, "plat_q") }, setup.env.admin)).status).toBe(201);
    const tenants = await setup.env.c.sql`SELECT DISTINCT tenant FROM jobs WHERE batch_id = ${open.body.id}`;
    expect(tenants.map((t) => t.tenant)).toEqual(["other"]);
  });

  it("cancels an open batch: it is sealed cancelled, its jobs are cancelled, later adds are 409", async () => {
    const open = await post("/v1/batches", { jobs: jobsOf(4, "cx_q"), seal: false });
    const res = await post(`/v1/batches/${open.body.id}/cancel`);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ status: "cancelled", cancelRequested: true, counts: { cancelled: 4, queued: 0 } });
    expect((await post(`/v1/batches/${open.body.id}/jobs`, { jobs: jobsOf(1, "cx_q") })).status).toBe(409);
    expect((await post(`/v1/batches/${open.body.id}/cancel`)).status).toBe(409);
    expect((await post(`/v1/batches/${open.body.id}/seal`)).status).toBe(409);
    expect(await claimAll("cx_q")).toHaveLength(0);
    expect((await post("/v1/batches/00000000-0000-4000-8000-000000000000/cancel")).status).toBe(404);
  });

  it("a repeated cancel of a running batch changes nothing: same version, ETag and updatedAt", async () => {
    const created = await post("/v1/batches", { jobs: jobsOf(2, "bq_recancel") });
    const id = created.body.id as string;
    expect(await claimAll("bq_recancel")).toHaveLength(2);
    const first = await post(`/v1/batches/${id}/cancel`);
    expect(first.status).toBe(200);
    expect(first.body).toMatchObject({ status: "running", cancelRequested: true });
    for (let i = 0; i < 2; i++) {
      const again = await post(`/v1/batches/${id}/cancel`);
      expect(again.status).toBe(200);
      expect({ version: again.body.version, updatedAt: again.body.updatedAt, etag: again.headers.etag }).toEqual({
        version: first.body.version,
        updatedAt: first.body.updatedAt,
        etag: first.headers.etag,
      });
    }
  });

  it("retries only a finished batch that has failed or cancelled jobs", async () => {
    const b = await post("/v1/batches", { jobs: jobsOf(1, "rt_q") });
    const r1 = await post(`/v1/batches/${b.body.id}/retry`);
    expect(r1.status).toBe(409);
    expect(r1.body.code).toBe("batch_not_retryable");
    expect((await post("/v1/batches/00000000-0000-4000-8000-000000000000/retry")).status).toBe(404);
    const [job] = await claimAll("rt_q");
    await setup.env.c.services.jobs.complete(job!.id, "acme", job!.leaseToken!, null);
    const done = await get(`/v1/batches/${b.body.id}`);
    expect(done.body.status).toBe("succeeded");
    expect((await post(`/v1/batches/${b.body.id}/retry`)).status).toBe(409);
  });

  it("lists batches by status with a keyset cursor", async () => {
    const tenantKey = await setup.env.key("lister", "client");
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push((await post("/v1/batches", { jobs: jobsOf(1, "list_q") }, tenantKey)).body.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res = await get(`/v1/batches?status=pending&limit=2${cursor ? `&cursor=${cursor}` : ""}`, tenantKey);
      expect(res.status).toBe(200);
      for (const item of res.body.items) {
        expect(item.counts.queued).toBe(1);
        seen.push(item.id);
      }
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    expect(seen).toEqual([...ids].reverse());
    expect((await get("/v1/batches?status=running", tenantKey)).body.items).toEqual([]);
    expect((await get("/v1/batches?cursor=garbage", tenantKey)).status).toBe(400);
    expect((await get("/v1/batches?status=nope", tenantKey)).status).toBe(400);
  });

  it("reports jobs finished per minute for the caller's tenant", async () => {
    const key = await setup.env.key("stats", "client", "worker");
    await post("/v1/batches", { jobs: jobsOf(3, "stats_q") }, key);
    const rows = await setup.env.c.services.jobs.claimNext({ queues: ["stats_q"], scope: "stats", workerId: "w", leaseSeconds: 60, max: 3, waitMs: 0 });
    await setup.env.c.services.jobs.complete(rows[0]!.id, "stats", rows[0]!.leaseToken!, null);
    await setup.env.c.services.jobs.complete(rows[1]!.id, "stats", rows[1]!.leaseToken!, null);
    await setup.env.c.services.jobs.fail(rows[2]!.id, "stats", { leaseToken: rows[2]!.leaseToken!, error: { message: "x" }, retryable: false });
    const res = await get("/v1/stats/throughput?minutes=60", key);
    expect(res.status).toBe(200);
    expect(res.body.items).toHaveLength(60);
    const sum = (k: string) => res.body.items.reduce((a: number, i: Record<string, number>) => a + i[k]!, 0);
    expect([sum("succeeded"), sum("failed"), sum("cancelled")]).toEqual([2, 1, 0]);
    const minutes = res.body.items.map((i: { minute: string }) => Date.parse(i.minute));
    expect(minutes.every((m: number, i: number) => i === 0 || m - minutes[i - 1] === 60_000)).toBe(true);
    // Another tenant sees none of them.
    const other = await get("/v1/stats/throughput?minutes=5", await setup.env.key("nobody", "client"));
    expect(other.body.items).toHaveLength(5);
    expect(other.body.items.every((i: { succeeded: number; failed: number; cancelled: number }) => i.succeeded + i.failed + i.cancelled === 0)).toBe(true);
    expect((await get("/v1/stats/throughput?minutes=0", key)).status).toBe(400);
  });

  // KNOWN BUG (src/http/routes/jobs.ts, not batch code): the jobs cursor carries created_at as a JS Date,
  // truncated to milliseconds, and a batch's jobs share one created_at (their transaction's now()), so
  it("GET /v1/jobs?batchId= pages through every job of a batch", async () => {
    const b = await post("/v1/batches", { jobs: jobsOf(5, "page_q"), seal: false });
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 10; page++) {
      const res = await get(`/v1/jobs?batchId=${b.body.id}&limit=2${cursor ? `&cursor=${cursor}` : ""}`);
      seen.push(...res.body.items.map((j: { id: string }) => j.id));
      cursor = res.body.nextCursor;
      if (!cursor) break;
    }
    expect(new Set(seen).size).toBe(5);
  });

  it("creates a batch of 10,000 jobs in one HTTP request", async () => {
    const jobs = Array.from({ length: 10_000 }, (_, i) => ({ queue: "bulk_q", kind: "bulk", payload: { i, note: "a small payload" } }));
    const body = JSON.stringify({ jobs });
    const t0 = performance.now();
    const res = await setup.env.http().post("/v1/batches").set("authorization", setup.client).set("content-type", "application/json").send(body);
    const ms = performance.now() - t0;
    expect(res.status).toBe(201);
    expect(res.body.total).toBe(10_000);
    console.log(`10,000-job batch: ${(body.length / 1024 / 1024).toFixed(2)} MiB body, 201 after ${ms.toFixed(0)} ms`);
    const [n] = await setup.env.c.sql`SELECT count(*)::int AS n FROM jobs WHERE batch_id = ${res.body.id}`;
    expect(n!.n).toBe(10_000);
  });
});
