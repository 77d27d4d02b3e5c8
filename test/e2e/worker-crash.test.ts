import { Webhook } from "standardwebhooks";
import { beforeAll, describe, expect, it } from "vitest";
import { useJobline } from "./helpers/useJobline.js";
import { api, type Jobline, type Receiver, until, webhookHeaders } from "./helpers/util.js";

/**
 * Real `jobline worker` processes running in-process handlers from
 * test/e2e/helpers/crash-handlers.ts (JOBLINE_HANDLERS_MODULE).
 */

const LEASE_SECONDS = 3;
const REAPER_MS = 200;
const t = useJobline("worker_crash");
let apiProc: Jobline;
let receiver: Receiver;
let client = "";
let worker = "";

const workerEnv = {
  JOBLINE_HANDLERS_MODULE: "./test/e2e/helpers/crash-handlers.ts",
  CRASH_LEASE_SECONDS: String(LEASE_SECONDS),
  JOBLINE_REAPER_INTERVAL_MS: String(REAPER_MS),
  JOBLINE_WEBHOOK_ALLOW_HOSTS: "127.0.0.1",
  JOBLINE_WEBHOOK_POLL_MS: "50",
  JOBLINE_SHUTDOWN_TIMEOUT_MS: "1000",
};

beforeAll(async () => {
  receiver = await t.receiver();
  apiProc = await t.start("serve", { JOBLINE_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" });
  client = await t.key(apiProc, "crash", "client");
  worker = await t.key(apiProc, "crash", "worker");
});

const row = async (id: string) =>
  (await t.sql<{ status: string; attempts: number; lease_token: string | null; worker_id: string | null; result: unknown }[]>`
    SELECT status::text, attempts, lease_token::text, worker_id, result FROM jobs WHERE id = ${id}`)[0]!;
const count = (text: string, pattern: string) => text.split(pattern).length - 1;

describe("a worker killed with SIGKILL mid-job", () => {
  it("the job is reclaimed after the lease expires, finishes exactly once, attempts count each claim once, the stale complete is refused", async () => {
    const s = await api(apiProc.url, client, "POST", "/v1/jobs", { queue: "crash", kind: "block", payload: {}, webhookUrl: receiver.url });
    expect(s.status).toBe(201);
    const id = s.body.id as string;

    const w1 = await t.start("worker", workerEnv);
    await w1.waitFor(`HANDLING ${id} attempt 1`);
    const held = await row(id);
    expect(held).toMatchObject({ status: "running", attempts: 1 });
    const staleToken = held.lease_token!;
    // Heartbeats keep it leased well past one lease while the worker lives.
    await new Promise((r) => setTimeout(r, LEASE_SECONDS * 1000 * 1.5));
    expect(await row(id)).toMatchObject({ status: "running", attempts: 1, lease_token: staleToken });

    const killedAt = Date.now();
    await w1.kill();
    expect((await w1.exited).signal).toBe("SIGKILL");
    expect((await row(id)).status).toBe("running");

    const w2 = await t.start("worker", workerEnv);
    await w2.waitFor(`COMPLETING ${id} attempt 2`, 30_000);
    const done = await until("the job to succeed", async () => {
      const r = await row(id);
      return r.status === "succeeded" ? r : undefined;
    });
    const recoveredMs = Date.now() - killedAt;
    console.log(
      `SIGKILL → job succeeded on the second worker after ${recoveredMs} ms (lease ${LEASE_SECONDS} s + reaper ${REAPER_MS} ms + second worker start-up)`,
    );
    expect(done.attempts).toBe(2);
    expect(done.result).toEqual({ attempt: 2, pid: w2.pid });
    expect(count(w1.output() + w2.output(), `COMPLETING ${id}`)).toBe(1);
    expect(count(w1.output() + w2.output(), `HANDLING ${id}`)).toBe(2);

    // The dead worker's complete, arriving late with its old token: refused.
    const late = await api(apiProc.url, worker, "POST", `/v1/jobs/${id}/complete`, { leaseToken: staleToken, result: { late: true } });
    expect(late.status).toBe(409);
    expect(late.headers.get("content-type")).toMatch(/application\/problem\+json/);
    const lateFail = await api(apiProc.url, worker, "POST", `/v1/jobs/${id}/fail`, { leaseToken: staleToken, error: { message: "late" } });
    expect(lateFail.status).toBe(409);
    expect((await row(id)).result).toEqual({ attempt: 2, pid: w2.pid });

    // One finalisation, one event, delivered once by the surviving worker.
    const secret = (await api(apiProc.url, t.admin, "GET", "/v1/tenants/crash/webhook-secret")).body.secret as string;
    const d = await until("the job.succeeded webhook", () => receiver.deliveries.find((x) => x.body.includes(id)));
    const event = new Webhook(secret).verify(d.body, webhookHeaders(d)) as { type: string; data: { id: string; attempts: number } };
    expect(event).toMatchObject({ type: "job.succeeded", data: { id, attempts: 2 } });
    await new Promise((r) => setTimeout(r, 300));
    expect(receiver.deliveries.filter((x) => x.body.includes(id))).toHaveLength(1);
    const [events] = await t.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_outbox WHERE subject_id = ${id}`;
    expect(events!.n).toBe(1);
    await w2.stop();
  });
});

describe("SIGTERM", () => {
  it("stops claiming, lets the running handler finish and record its result, then exits 0", async () => {
    const w = await t.start("worker", { ...workerEnv, JOBLINE_SHUTDOWN_TIMEOUT_MS: "10000" });
    const s = await api(apiProc.url, client, "POST", "/v1/jobs", { queue: "crash", kind: "slow", payload: { ms: 1500 } });
    await w.waitFor(`HANDLING ${s.body.id} attempt 1`);
    w.signal("SIGTERM");
    // Printed in the same tick as the worker stops claiming.
    await w.waitFor("SIGTERM: shutting down");
    const waiting = await api(apiProc.url, client, "POST", "/v1/jobs", { queue: "crash", kind: "slow", payload: { ms: 1 } });
    const exit = await w.exited;
    expect(exit.code, w.output()).toBe(0);
    expect(await row(s.body.id)).toMatchObject({ status: "succeeded", attempts: 1 });
    // Submitted after SIGTERM: not claimed by the stopping worker.
    expect(await row(waiting.body.id)).toMatchObject({ status: "queued", attempts: 0 });
  });

  it("a handler that outlives JOBLINE_SHUTDOWN_TIMEOUT_MS is left leased (not failed, not released) for the reaper", async () => {
    const w = await t.start("worker", { ...workerEnv, JOBLINE_SHUTDOWN_TIMEOUT_MS: "300" });
    const s = await api(apiProc.url, client, "POST", "/v1/jobs", { queue: "crash", kind: "slow", payload: { ms: 60_000 } });
    // The previous test's queued job is claimed by this worker too; it is short and finishes.
    await w.waitFor(`HANDLING ${s.body.id} attempt 1`);
    w.signal("SIGTERM");
    const exit = await w.exited;
    expect(exit.code, w.output()).toBe(0);
    const left = await row(s.body.id);
    expect(left).toMatchObject({ status: "running", attempts: 1 });
    const w2 = await t.start("worker", workerEnv);
    // The reaper requeues it; the second worker claims it (attempt 2) and it runs on.
    await w2.waitFor(`HANDLING ${s.body.id} attempt 2`, 30_000);
    await w2.kill();
  });
});
