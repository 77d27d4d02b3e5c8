import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJobService } from "../../src/services/jobs.js";
import { createTestEnv, type TestEnv } from "../helpers/app.js";

let env: TestEnv;
let client: string;
let worker: string;
const BASE = 1000;
beforeAll(async () => {
  env = await createTestEnv("jobs_retry", { JOBLINE_BACKOFF_BASE_MS: BASE, JOBLINE_BACKOFF_MAX_MS: 3_600_000 });
  client = await env.key("acme", "client");
  worker = await env.key("acme", "worker");
});
afterAll(async () => env?.close());

async function submit(queue: string, extra: object = {}) {
  const r = await env.http().post("/v1/jobs").set("authorization", client).send({ queue, kind: "k", webhookUrl: "http://127.0.0.1:9/h", ...extra });
  expect(r.status).toBe(201);
  return r.body as { id: string; version: number };
}
async function processNext(queue: string) {
  const r = await env.http().post("/v1/process-next").set("authorization", worker).send({ queues: [queue], workerId: "w" });
  expect(r.status).toBe(200);
  return r.body.jobs as Array<{ id: string; leaseToken: string; attempts: number }>;
}
const fail = (id: string, body: object) => env.http().post(`/v1/jobs/${id}/fail`).set("authorization", worker).send(body);
const makeDue = (id: string) => env.c.sql`UPDATE jobs SET run_at = now() - interval '1 millisecond' WHERE id = ${id}`;
const events = async (id: string) =>
  (await env.c.sql<{ eventType: string }[]>`SELECT event_type FROM webhook_outbox WHERE subject_id = ${id}`).map((e) => e.eventType);
/** The delay the fail statement chose: run_at and updated_at both come from its now(). */
const delayOf = (b: { runAt: string; updatedAt: string }) => Date.parse(b.runAt) - Date.parse(b.updatedAt);

describe("fail and retry", () => {
  it("fail with attempts left requeues in the future; not claimable before runAt, claimable after", async () => {
    const { id } = await submit("r1", { maxAttempts: 3 });
    const [j] = await processNext("r1");
    const r = await fail(id, { leaseToken: j!.leaseToken, error: { message: "boom", code: "E1" } });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ status: "queued", attempts: 1, leaseExpiresAt: null, finishedAt: null, lastError: { message: "boom", code: "E1" } });
    // Force a delay we can observe: full jitter may legitimately pick ~0.
    await env.c.sql`UPDATE jobs SET run_at = now() + interval '1 hour' WHERE id = ${id}`;
    expect(await processNext("r1")).toEqual([]);
    const early = await env.http().post(`/v1/jobs/${id}/claim`).set("authorization", worker).send({ workerId: "w" });
    expect(early.status).toBe(409);
    expect(early.body.code).toBe("not_claimable");
    await makeDue(id);
    const [again] = await processNext("r1");
    expect(again!.id).toBe(id);
    expect(again!.attempts).toBe(2);
    expect(await events(id)).toEqual([]);
  });

  it("a retry delay is in the future until it passes: process-next is empty for a job with runAt = now + retryAfterSeconds", async () => {
    const { id } = await submit("r1b");
    const [j] = await processNext("r1b");
    const r = await fail(id, { leaseToken: j!.leaseToken, error: { message: "later" }, retryAfterSeconds: 3600 });
    expect(r.body.status).toBe("queued");
    expect(delayOf(r.body)).toBe(3_600_000);
    expect(await processNext("r1b")).toEqual([]);
    await makeDue(id);
    expect((await processNext("r1b"))[0]!.id).toBe(id);
  });

  it("the last attempt fails for good, with one job.failed event", async () => {
    const { id } = await submit("r2", { maxAttempts: 2 });
    let [j] = await processNext("r2");
    expect((await fail(id, { leaseToken: j!.leaseToken, error: { message: "1" } })).body.status).toBe("queued");
    await makeDue(id);
    [j] = await processNext("r2");
    expect(j!.attempts).toBe(2);
    const last = await fail(id, { leaseToken: j!.leaseToken, error: { message: "2" } });
    expect(last.status).toBe(200);
    expect(last.body).toMatchObject({ status: "failed", attempts: 2, lastError: { message: "2" } });
    expect(last.body.finishedAt).not.toBeNull();
    expect(await events(id)).toEqual(["job.failed"]);
    await makeDue(id);
    expect(await processNext("r2")).toEqual([]);
  });

  it("retryable: false fails at once", async () => {
    const { id } = await submit("r3", { maxAttempts: 5 });
    const [j] = await processNext("r3");
    const r = await fail(id, { leaseToken: j!.leaseToken, error: { message: "fatal" }, retryable: false });
    expect(r.body).toMatchObject({ status: "failed", attempts: 1 });
    expect(await events(id)).toEqual(["job.failed"]);
    // Repeating the same fail returns the same job, with no second event.
    const again = await fail(id, { leaseToken: j!.leaseToken, error: { message: "fatal" }, retryable: false });
    expect(again.status).toBe(200);
    expect(again.body).toEqual(r.body);
    expect(await events(id)).toEqual(["job.failed"]);
  });

  it("a fail after a cancel request cancels, even with attempts left", async () => {
    const { id } = await submit("r4", { maxAttempts: 5 });
    const [j] = await processNext("r4");
    const c = await env.http().post(`/v1/jobs/${id}/cancel`).set("authorization", client);
    expect(c.body).toMatchObject({ status: "running", cancelRequested: true });
    const hb = await env.http().post(`/v1/jobs/${id}/heartbeat`).set("authorization", worker).send({ leaseToken: j!.leaseToken });
    expect(hb.body.cancelRequested).toBe(true);
    const r = await fail(id, { leaseToken: j!.leaseToken, error: { message: "stopped" } });
    expect(r.body).toMatchObject({ status: "cancelled", attempts: 1, cancelRequested: true });
    expect(await events(id)).toEqual(["job.cancelled"]);
  });

  it("a complete after a cancel request still succeeds", async () => {
    const { id } = await submit("r5");
    const [j] = await processNext("r5");
    await env.http().post(`/v1/jobs/${id}/cancel`).set("authorization", client);
    const r = await env.http().post(`/v1/jobs/${id}/complete`).set("authorization", worker).send({ leaseToken: j!.leaseToken });
    expect(r.body).toMatchObject({ status: "succeeded", cancelRequested: true });
  });

  it("backoff stays within full-jitter bounds [0, min(max, base * 2^(attempts-1))] and spreads over them", async () => {
    const { id } = await submit("r6", { maxAttempts: 100 });
    const seen: Array<{ attempts: number; delay: number; ceiling: number }> = [];
    for (let k = 0; k < 40; k++) {
      await makeDue(id);
      const [j] = await processNext("r6");
      const r = await fail(id, { leaseToken: j!.leaseToken, error: { message: `f${k}` } });
      expect(r.body.status).toBe("queued");
      const ceiling = Math.min(3_600_000, BASE * 2 ** (j!.attempts - 1));
      seen.push({ attempts: j!.attempts, delay: delayOf(r.body), ceiling });
    }
    for (const s of seen) {
      expect(s.delay, JSON.stringify(s)).toBeGreaterThanOrEqual(0);
      // runAt and updatedAt are each truncated to ms when read into a Date.
      expect(s.delay, JSON.stringify(s)).toBeLessThanOrEqual(s.ceiling + 1);
    }
    // 40 uniform draws: some land in the lower and some in the upper half of their range.
    expect(seen.some((s) => s.delay < s.ceiling / 2)).toBe(true);
    expect(seen.some((s) => s.delay > s.ceiling / 2)).toBe(true);
    // Late attempts are capped at the maximum.
    expect(seen.at(-1)!.ceiling).toBe(3_600_000);
  });

  it("the jitter draw maps onto the bounds exactly: 0 → no delay, ~1 → the ceiling, capped by JOBLINE_BACKOFF_MAX_MS", async () => {
    const make = (u: number, maxMs: number) =>
      createJobService({
        jobs: env.c.repos.jobs,
        notifier: env.c.notifier,
        metrics: env.c.metrics,
        config: { JOBLINE_BACKOFF_BASE_MS: BASE, JOBLINE_BACKOFF_MAX_MS: maxMs },
        random: () => u,
      });
    const cases = [
      { u: 0, maxMs: 3_600_000, attempts: 3, want: 0 },
      { u: 0.999999, maxMs: 3_600_000, attempts: 1, want: 1000 },
      { u: 0.999999, maxMs: 3_600_000, attempts: 4, want: 8000 },
      { u: 0.5, maxMs: 3_600_000, attempts: 3, want: 2000 },
      { u: 0.999999, maxMs: 5000, attempts: 6, want: 5000 },
    ];
    for (const c of cases) {
      const svc = make(c.u, c.maxMs);
      const { id } = await submit(`r7_${c.attempts}_${c.u}`, { maxAttempts: 100 });
      await env.c.sql`UPDATE jobs SET attempts = ${c.attempts - 1} WHERE id = ${id}`;
      const [j] = await svc.claimNext({ queues: [`r7_${c.attempts}_${c.u}`], scope: "acme", workerId: "w", leaseSeconds: 60, max: 1, waitMs: 0 });
      expect(j!.attempts).toBe(c.attempts);
      const r = await svc.fail(id, "acme", { leaseToken: j!.leaseToken!, error: { message: "x" }, retryable: true });
      if (!r.ok) throw new Error(r.error);
      const delay = r.value.runAt.getTime() - r.value.updatedAt.getTime();
      expect(Math.abs(delay - c.want), JSON.stringify({ ...c, delay })).toBeLessThanOrEqual(1);
    }
  });
});
