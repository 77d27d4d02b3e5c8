import { Webhook } from "standardwebhooks";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import type { Config } from "../../src/config.js";
import { isBlockedAddress, signWebhook } from "../../src/services/webhooks.js";
import { createWebhookDispatcher, type WebhookDispatcher } from "../../src/worker/webhooks.js";
import { startReceiver, until, webhookHeaders } from "../e2e/helpers/util.js";
import { useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("worker_webhooks", { JOBLINE_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" });
let dispatchers: WebhookDispatcher[] = [];
const receivers: Array<{ close: () => Promise<void> }> = [];

afterEach(async () => {
  await Promise.all(dispatchers.map((d) => d.stop()));
  dispatchers = [];
});
afterAll(async () => {
  await Promise.all(receivers.map((r) => r.close()));
});

const dispatcher = (cfg: Partial<Config> = {}) => {
  const d = createWebhookDispatcher({
    ...setup.env.c,
    outbox: setup.env.c.repos.outbox,
    tenants: setup.env.c.repos.tenants,
    config: {
      ...setup.env.c.config,
      JOBLINE_WEBHOOK_ALLOW_HOSTS: "127.0.0.1",
      JOBLINE_WEBHOOK_RETRY_BASE_MS: 100,
      JOBLINE_WEBHOOK_MAX_ATTEMPTS: 8,
      JOBLINE_WEBHOOK_POLL_MS: 20,
      ...cfg,
    },
  });
  d.start();
  dispatchers.push(d);
  return d;
};

const receiver = async (status?: Parameters<typeof startReceiver>[0]) => {
  const r = await startReceiver(status);
  receivers.push(r);
  return r;
};

/** Submits, claims and completes one job through the service layer; returns the finished row. */
async function finishJob(tenant: string, webhookUrl: string, queue = "hooks") {
  const s = await setup.env.c.services.jobs.submit(tenant, { queue, kind: "k", payload: { snake_key: 1, n: [1, 2] }, webhookUrl });
  if (!s.ok) throw new Error(s.error);
  const [claimed] = await setup.env.c.services.jobs.claimNext({
    queues: [queue], scope: tenant, workerId: "w", leaseSeconds: 30, max: 1, waitMs: 0,
  });
  expect(claimed?.id).toBe(s.value.id);
  const done = await setup.env.c.services.jobs.complete(claimed!.id, tenant, claimed!.leaseToken!, { out_put: true });
  if (!done.ok) throw new Error(done.error);
  return done.value;
}

const outboxRow = async (subjectId: string) => {
  const [r] = await setup.env.c.sql<{ status: string; attempts: number; lastError: string | null; id: string }[]>`
    SELECT id, status::text, attempts, last_error FROM webhook_outbox WHERE subject_id = ${subjectId}`;
  return r!;
};

describe("webhook dispatcher", () => {
  it("posts a Standard Webhooks signed event whose data is the job's public representation", async () => {
    const r = await receiver();
    const secretRes = await setup.env.http().get("/v1/tenants/hooks-a/webhook-secret").set("authorization", setup.env.admin);
    // The tenant exists once it has a key.
    await setup.env.key("hooks-a", "client");
    const secret = (await setup.env.http().get("/v1/tenants/hooks-a/webhook-secret").set("authorization", setup.env.admin)).body.secret as string;
    expect(secretRes.status).toBe(404);
    expect(secret).toMatch(/^whsec_/);
    const job = await finishJob("hooks-a", r.url);
    dispatcher();
    const d = await until("one delivery", () => r.deliveries[0]);
    const row = await outboxRow(job.id);
    expect(d.headers["webhook-id"]).toBe(`msg_${row.id}`);
    expect(d.headers["content-type"]).toBe("application/json");
    expect(Math.abs(Number(d.headers["webhook-timestamp"]) - Date.now() / 1000)).toBeLessThan(60);
    const event = new Webhook(secret).verify(d.body, webhookHeaders(d)) as { type: string; timestamp: string; data: Record<string, unknown> };
    expect(event.type).toBe("job.succeeded");
    expect(new Date(event.timestamp).toISOString()).toBe(event.timestamp);
    const viaHttp = await setup.env.http().get(`/v1/jobs/${job.id}`).set("authorization", setup.env.admin);
    // payload and result are compared with the stored JSON below: the HTTP read path rewrites
    // snake_case keys inside them (postgres.camel's value transform in src/db/client.ts).
    const { payload: _p, result: _r, ...rest } = event.data;
    const { payload: _hp, result: _hr, ...httpRest } = viaHttp.body as Record<string, unknown>;
    expect(rest).toEqual(httpRest);
    expect(event.data).not.toHaveProperty("leaseToken");
    // The tenant's own JSON comes through as it was stored.
    const [stored] = await setup.env.c.sql<{ payload: string; result: string }[]>`SELECT payload::text, result::text FROM jobs WHERE id = ${job.id}`;
    expect(JSON.stringify(event.data.payload)).toBe(JSON.stringify(JSON.parse(stored!.payload)));
    expect(JSON.stringify(event.data.result)).toBe(JSON.stringify(JSON.parse(stored!.result)));
    await until("delivered", async () => ((await outboxRow(job.id)).status === "delivered" ? true : undefined));
    // A wrong secret or a changed body does not verify.
    expect(() => new Webhook(`whsec_${Buffer.from("x".repeat(24)).toString("base64")}`).verify(d.body, webhookHeaders(d))).toThrow();
    expect(() => new Webhook(secret).verify(d.body.replace("succeeded", "failed"), webhookHeaders(d))).toThrow();
  });

  it("signs exactly as the standardwebhooks reference library does", () => {
    const secret = `whsec_${Buffer.from("0123456789abcdef0123456789abcdef").toString("base64")}`;
    const ts = new Date(1_700_000_000_000);
    const ref = new Webhook(secret).sign("msg_1", ts, '{"a":1}');
    expect(signWebhook(secret, "msg_1", 1_700_000_000, '{"a":1}')).toBe(ref);
  });

  it("retries non-2xx with the same webhook-id and doubling delays, delivered on the third try", async () => {
    const r = await receiver((_d, n) => (n <= 2 ? 500 : 200));
    const job = await finishJob("hooks-b", r.url);
    dispatcher({ JOBLINE_WEBHOOK_RETRY_BASE_MS: 150 });
    await until("delivered", async () => ((await outboxRow(job.id)).status === "delivered" ? true : undefined), 15_000);
    expect(r.deliveries).toHaveLength(3);
    const ids = new Set(r.deliveries.map((d) => d.headers["webhook-id"]));
    expect(ids.size).toBe(1);
    expect(new Set(r.deliveries.map((d) => d.body)).size).toBe(1);
    const [a, b, c] = r.deliveries.map((d) => d.at);
    // Lower bounds only: a retry can never come before its backoff.
    expect(b! - a!).toBeGreaterThanOrEqual(140);
    expect(c! - b!).toBeGreaterThanOrEqual(290);
    const row = await outboxRow(job.id);
    expect(row.attempts).toBe(3);
    const secret = (await setup.env.c.repos.tenants.getSecret("hooks-b"))!;
    for (const d of r.deliveries) expect(() => new Webhook(secret).verify(d.body, webhookHeaders(d))).not.toThrow();
  });

  it("a receiver that never answers 2xx ends dead after JOBLINE_WEBHOOK_MAX_ATTEMPTS tries", async () => {
    const r = await receiver(() => 503);
    const job = await finishJob("hooks-c", r.url);
    const count = async (o: string) => (await setup.env.c.metrics.webhookDeliveries.get()).values.find((v) => v.labels.outcome === o)?.value ?? 0;
    const before = { retry: await count("retry"), dead: await count("dead") };
    dispatcher({ JOBLINE_WEBHOOK_RETRY_BASE_MS: 20, JOBLINE_WEBHOOK_MAX_ATTEMPTS: 3 });
    await until("dead", async () => ((await outboxRow(job.id)).status === "dead" ? true : undefined), 15_000);
    // Nothing more arrives once dead.
    await new Promise((res) => setTimeout(res, 200));
    expect(r.deliveries).toHaveLength(3);
    const row = await outboxRow(job.id);
    expect(row).toMatchObject({ attempts: 3, lastError: "receiver answered HTTP 503" });
    expect((await count("retry")) - before.retry).toBe(2);
    expect((await count("dead")) - before.dead).toBe(1);
  });

  it("a receiver that does not answer in time counts as a failed attempt", async () => {
    let hang = true;
    const r = await receiver(() => 200);
    const { createServer } = await import("node:http");
    const slow = createServer((_req, res) => {
      if (!hang) res.writeHead(200).end();
    });
    await new Promise<void>((ok) => slow.listen(0, "127.0.0.1", ok));
    receivers.push({ close: () => new Promise<void>((ok) => { slow.closeAllConnections(); slow.close(() => ok()); }) });
    const port = (slow.address() as { port: number }).port;
    void r;
    const job = await finishJob("hooks-d", `http://127.0.0.1:${port}/slow`);
    dispatcher({ JOBLINE_WEBHOOK_TIMEOUT_MS: 200, JOBLINE_WEBHOOK_RETRY_BASE_MS: 50 });
    const failed = await until("a timed-out attempt", async () => {
      const row = await outboxRow(job.id);
      return row.lastError ? row : undefined;
    }, 10_000);
    expect(failed.lastError).toMatch(/no response within 200 ms/);
    hang = false;
    await until("delivered", async () => ((await outboxRow(job.id)).status === "delivered" ? true : undefined), 10_000);
  });

  it("refuses private, loopback and link-local destinations unless the host is allowed; marks them dead at once", async () => {
    const r = await receiver();
    const viaIp = await finishJob("hooks-e", `http://127.0.0.1:${r.port}/x`);
    const viaName = await finishJob("hooks-e", `http://localhost:${r.port}/x`);
    const metadata = await finishJob("hooks-e", "http://169.254.169.254/latest/meta-data");
    const mapped = await finishJob("hooks-e", `http://[::ffff:127.0.0.1]:${r.port}/x`);
    // IPv4-compatible (::/96): refused as policy, final at the first attempt, never tried as a connection.
    const compat = await finishJob("hooks-e", `http://[::127.0.0.1]:${r.port}/x`);
    dispatcher({ JOBLINE_WEBHOOK_ALLOW_HOSTS: "" });
    for (const j of [viaIp, viaName, metadata, mapped, compat])
      await until("dead", async () => ((await outboxRow(j.id)).status === "dead" ? true : undefined), 10_000);
    expect(r.deliveries).toHaveLength(0);
    expect((await outboxRow(viaIp.id)).lastError).toMatch(/127\.0\.0\.1 is a non-public address/);
    expect((await outboxRow(viaName.id)).lastError).toMatch(/localhost resolves to non-public address/);
    expect((await outboxRow(metadata.id)).lastError).toMatch(/169\.254\.169\.254 is a non-public address/);
    expect((await outboxRow(mapped.id)).attempts).toBe(1);
    expect((await outboxRow(compat.id)).lastError).toMatch(/::7f00:1 is a non-public address/);
    for (const a of ["10.1.2.3", "172.16.0.1", "192.168.1.1", "100.64.0.1", "0.0.0.0", "::1", "fe80::1", "fd00::1", "::ffff:10.0.0.1"])
      expect(isBlockedAddress(a), a).toBe(true);
    for (const a of ["93.184.216.34", "2606:2800:220:1::1", "8.8.8.8"]) expect(isBlockedAddress(a), a).toBe(false);
  });

  it("two dispatchers on one outbox deliver each of 200 events exactly once", async () => {
    const r = await receiver();
    const ids: string[] = [];
    for (let i = 0; i < 200; i++) ids.push((await finishJob("hooks-f", r.url, "hooks-f")).id);
    dispatcher({ JOBLINE_WEBHOOK_CONCURRENCY: 8 });
    dispatcher({ JOBLINE_WEBHOOK_CONCURRENCY: 8 });
    await until("200 delivered", async () => {
      const [x] = await setup.env.c.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM webhook_outbox WHERE tenant = 'hooks-f' AND status = 'delivered'`;
      return x!.n === 200 ? true : undefined;
    }, 30_000);
    expect(r.deliveries).toHaveLength(200);
    const subjects = r.deliveries.map((d) => (JSON.parse(d.body) as { data: { id: string } }).data.id);
    expect(new Set(subjects).size).toBe(200);
    expect(new Set(subjects)).toEqual(new Set(ids));
  });

  it("settling is fenced by the lease token: a dispatcher whose lease was taken over cannot mark the row", async () => {
    const r = await receiver();
    const job = await finishJob("hooks-g", r.url);
    const outbox = setup.env.c.repos.outbox;
    const [first] = (await outbox.claimDue(100, 60_000)).filter((x) => x.subjectId === job.id);
    expect(first).toBeDefined();
    // Not due again while leased.
    expect((await outbox.claimDue(100, 60_000)).some((x) => x.subjectId === job.id)).toBe(false);
    await setup.env.c.sql`UPDATE webhook_outbox SET lease_expires_at = now() - interval '1 second' WHERE id = ${first!.id}`;
    const [second] = (await outbox.claimDue(100, 60_000)).filter((x) => x.subjectId === job.id);
    expect(second?.leaseToken).not.toBe(first!.leaseToken);
    expect(second!.attempts).toBe(2);
    expect(await outbox.markDelivered(first!.id, first!.leaseToken)).toBe(false);
    expect(await outbox.markFailed(first!.id, first!.leaseToken, { error: "x", retryBaseMs: 1, maxAttempts: 8 })).toBeNull();
    expect(await outbox.markDelivered(second!.id, second!.leaseToken)).toBe(true);
    expect(await outbox.markDelivered(second!.id, second!.leaseToken)).toBe(false);
    expect((await outboxRow(job.id)).status).toBe("delivered");
  });

  it("delivers batch.completed whose data is the batch's public representation", async () => {
    const r = await receiver();
    const client = await setup.env.key("hooks-h", "client");
    const created = await setup.env
      .http()
      .post("/v1/batches")
      .set("authorization", client)
      .send({ jobs: [{ queue: "hooks-h", kind: "k" }, { queue: "hooks-h", kind: "k" }], webhookUrl: r.url });
    expect(created.status).toBe(201);
    const claimed = await setup.env.c.services.jobs.claimNext({ queues: ["hooks-h"], scope: "hooks-h", workerId: "w", leaseSeconds: 30, max: 2, waitMs: 0 });
    expect(claimed).toHaveLength(2);
    expect((await setup.env.c.services.jobs.complete(claimed[0]!.id, "hooks-h", claimed[0]!.leaseToken!, null)).ok).toBe(true);
    const f = await setup.env.c.services.jobs.fail(claimed[1]!.id, "hooks-h", { leaseToken: claimed[1]!.leaseToken!, error: { message: "no" }, retryable: false });
    expect(f.ok).toBe(true);
    dispatcher();
    const d = await until("batch.completed", () => r.deliveries.find((x) => JSON.parse(x.body).type === "batch.completed"));
    const secret = (await setup.env.c.repos.tenants.getSecret("hooks-h"))!;
    const event = new Webhook(secret).verify(d.body, webhookHeaders(d)) as { data: Record<string, unknown> };
    const viaHttp = await setup.env.http().get(`/v1/batches/${created.body.id}`).set("authorization", client);
    expect(viaHttp.body.status).toBe("partially_succeeded");
    expect(event.data).toEqual(viaHttp.body);
  });
});
