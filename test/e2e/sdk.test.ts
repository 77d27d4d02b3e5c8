import { Webhook } from "standardwebhooks";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  createJoblineClient,
  type Job,
  JoblineApiError,
  type JoblineClient,
  NonRetryableError,
  runHttpWorker,
  unwrap,
  type WorkerStats,
} from "../../clients/typescript/src/index.js";
import { useJobline } from "./helpers/useJobline.js";
import { type Receiver, until, webhookHeaders } from "./helpers/util.js";

/**
 * The SDK against the real server process (`jobline start`: API + worker in one process):
 * keys, webhook secret, submit, runHttpWorker, signed webhooks, all through the SDK.
 */

const t = useJobline("sdk_e2e", { stopGraceMs: 15_000 });
let receiver: Receiver;
let baseUrl = "";
const stopWorker = new AbortController();
let workerRun: Promise<WorkerStats> | null = null;
const handled: string[] = [];

let admin: JoblineClient;
let client: JoblineClient;
let workerKey = "";
let secret = "";

beforeAll(async () => {
  receiver = await t.receiver();
  const server = await t.start("start", {
    JOBLINE_WEBHOOK_ALLOW_HOSTS: "127.0.0.1",
    JOBLINE_REAPER_INTERVAL_MS: "500",
    JOBLINE_WEBHOOK_RETRY_BASE_MS: "100",
    JOBLINE_SHUTDOWN_TIMEOUT_MS: "5000",
  });
  baseUrl = server.url;

  admin = createJoblineClient({ baseUrl, apiKey: t.admin });
  const clientKey = await unwrap(admin.POST("/v1/api-keys", { body: { tenant: "acme", roles: ["client"], name: "sdk e2e client" } }));
  const wk = await unwrap(admin.POST("/v1/api-keys", { body: { tenant: "acme", roles: ["worker"], name: "sdk e2e worker" } }));
  expect(clientKey.tenant).toBe("acme");
  expect(wk.roles).toEqual(["worker"]);
  workerKey = wk.key;
  client = createJoblineClient({ baseUrl, apiKey: clientKey.key });
  secret = (await unwrap(admin.GET("/v1/tenants/{tenant}/webhook-secret", { params: { path: { tenant: "acme" } } }))).secret;
  expect(secret).toMatch(/^whsec_/);

  workerRun = runHttpWorker({
    baseUrl,
    apiKey: workerKey,
    queues: ["sdk-e2e"],
    concurrency: 2,
    waitMs: 5_000,
    workerId: "sdk-e2e-worker",
    signal: stopWorker.signal,
    handlers: {
      double: async (job) => {
        handled.push(job.id);
        const { n } = job.payload as { n: number };
        return { doubled: n * 2, attempt: job.attempts };
      },
      reject: async (job) => {
        handled.push(job.id);
        throw new NonRetryableError(`cannot process ${(job.payload as { what: string }).what}`, { code: "unprocessable" });
      },
    },
  });
  // Surface a worker crash at once rather than as a timeout.
  workerRun.catch(() => {});
});

afterAll(async () => {
  // Before useJobline stops the server: the worker's long poll is cut first.
  stopWorker.abort();
  await workerRun?.catch(() => {});
});

const getJob = (id: string) => unwrap(client.GET("/v1/jobs/{id}", { params: { path: { id } } }));

/** The receiver's deliveries of `type` for `jobId`, each verified against the tenant secret. */
function eventsFor(jobId: string, type: string): Array<{ type: string; timestamp: string; data: Job }> {
  const wh = new Webhook(secret);
  const out: Array<{ type: string; timestamp: string; data: Job }> = [];
  for (const d of receiver.deliveries) {
    const event = wh.verify(d.body, webhookHeaders(d)) as { type: string; timestamp: string; data: Job };
    if (event.type === type && event.data.id === jobId) out.push(event);
  }
  return out;
}

describe("TypeScript SDK against `jobline start`", () => {
  it("refuses a key without the role, as a typed problem", async () => {
    const r = await client.POST("/v1/process-next", { body: { queues: ["sdk-e2e"], workerId: "not-a-worker" } });
    expect(r.data).toBeUndefined();
    expect(r.response.status).toBe(403);
    expect(r.error?.code).toBe("forbidden");
    await expect(unwrap(client.POST("/v1/process-next", { body: { queues: ["x"], workerId: "w" } }))).rejects.toBeInstanceOf(
      JoblineApiError,
    );
  });

  it("client.schedules: create → `jobline start` runs its ticks → pause, resume, update, list, delete; a taken name throws 409", async () => {
    const s = await client.schedules.create({ name: "sdk-every-second", cron: "* * * * * *", job: { queue: "sdk-sched", kind: "tick" } });
    expect(s).toMatchObject({ name: "sdk-every-second", paused: false, overlap: "allow", catchUp: "latest" });
    const job = await until("a job of the schedule", async () => {
      const page = await unwrap(client.GET("/v1/jobs", { params: { query: { queue: "sdk-sched" } } }));
      return page.items.find((j) => j.scheduleId === s.id);
    });
    expect(Date.parse(job.scheduledFor!)).toBeGreaterThanOrEqual(Date.parse(s.nextRunAt!));
    const paused = await client.schedules.pause(s.id);
    expect(paused).toMatchObject({ paused: true, nextRunAt: null });
    expect((await client.schedules.get(s.id)).lastJobId).not.toBeNull();
    expect((await client.schedules.resume(s.id)).paused).toBe(false);
    expect((await client.schedules.update(s.id, { cron: "0 0 1 1 *", catchUp: "none" })).catchUp).toBe("none");
    expect((await client.schedules.list({ limit: 10 })).items.map((x) => x.id)).toContain(s.id);
    const dup = await client.schedules.create({ name: "sdk-every-second", cron: "0 * * * *", job: { queue: "q", kind: "k" } }).catch((e: unknown) => e);
    expect(dup).toBeInstanceOf(JoblineApiError);
    expect(dup).toMatchObject({ status: 409, code: "name_taken" });
    await client.schedules.delete(s.id);
    await expect(client.schedules.get(s.id)).rejects.toMatchObject({ status: 404 });
  });

  it("submit (idempotent) → runHttpWorker completes it → signed job.succeeded webhook", async () => {
    const body = { queue: "sdk-e2e", kind: "double", payload: { n: 21 }, webhookUrl: receiver.url };
    const first = await client.POST("/v1/jobs", { body, params: { header: { "idempotency-key": "sdk-e2e-1" } } });
    expect(first.response.status).toBe(201);
    const job = first.data!;
    expect(job.status).toBe("queued");
    const replay = await client.POST("/v1/jobs", { body, params: { header: { "idempotency-key": "sdk-e2e-1" } } });
    expect(replay.response.status).toBe(200);
    expect(replay.data?.id).toBe(job.id);

    const done = await until("the job to succeed", async () => {
      const j = await getJob(job.id);
      return j.status === "succeeded" ? j : undefined;
    });
    expect(done.result).toEqual({ doubled: 42, attempt: 1 });
    expect(done.workerId).toBe("sdk-e2e-worker");
    expect(done.attempts).toBe(1);
    expect(handled.filter((id) => id === job.id)).toHaveLength(1);

    // Needs the webhook dispatcher of `jobline start` (src/worker/).
    const [event] = await until("the signed job.succeeded webhook", () => {
      const events = eventsFor(job.id, "job.succeeded");
      return events.length > 0 ? events : undefined;
    });
    expect(event!.data.status).toBe("succeeded");
    expect(event!.data.result).toEqual({ doubled: 42, attempt: 1 });
  });

  it("a handler throwing NonRetryableError fails the job at once (no retry), with a signed job.failed webhook", async () => {
    const job = await unwrap(
      client.POST("/v1/jobs", { body: { queue: "sdk-e2e", kind: "reject", payload: { what: "that" }, maxAttempts: 5, webhookUrl: receiver.url } }),
    );
    const failed = await until("the job to fail", async () => {
      const j = await getJob(job.id);
      return j.status === "failed" ? j : undefined;
    });
    expect(failed.attempts).toBe(1);
    expect(failed.lastError).toMatchObject({ message: "cannot process that", code: "unprocessable" });
    expect(handled.filter((id) => id === job.id)).toHaveLength(1);

    const [event] = await until("the signed job.failed webhook", () => {
      const events = eventsFor(job.id, "job.failed");
      return events.length > 0 ? events : undefined;
    });
    expect(event!.data.status).toBe("failed");
  });

  it("a tampered delivery does not verify", async () => {
    const d = await until("some delivery", () => receiver.deliveries[0]);
    expect(() => new Webhook(secret).verify(`${d.body} `, webhookHeaders(d))).toThrow();
  });

  it("stops on abort: the long poll is cut and the promise resolves with the counts", async () => {
    // Each job was delivered once and only once (a redelivery would mean a second event).
    expect(receiver.deliveries.filter((d) => d.body.includes('"job.succeeded"'))).toHaveLength(1);
    expect(receiver.deliveries.filter((d) => d.body.includes('"job.failed"'))).toHaveLength(1);
    stopWorker.abort();
    const stats = await workerRun!;
    expect(stats).toMatchObject({ claimed: 2, succeeded: 1, failed: 1, abandoned: 0 });
    // Nothing is leased to the stopped worker afterwards.
    // (The server must drop the cut long poll: the job below must not be leased to nobody.)
    const later = await unwrap(client.POST("/v1/jobs", { body: { queue: "sdk-e2e", kind: "double", payload: { n: 1 } } }));
    const deadline = Date.now() + 1_500;
    while (Date.now() < deadline) {
      const j = await getJob(later.id);
      expect(j.status, `leased to ${j.workerId} after the worker stopped`).toBe("queued");
      await new Promise((r) => setTimeout(r, 50));
    }
  });
});
