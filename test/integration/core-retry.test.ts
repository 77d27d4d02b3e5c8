import { describe, expect, it } from "vitest";
import { completeJob, processNext, submitJob, useTestEnv } from "../helpers/app.js";

const BASE_MS = 20_000;
const MAX_MS = 50_000;

const setup = useTestEnv("core_retry", { JOBLINE_BACKOFF_BASE_MS: BASE_MS, JOBLINE_BACKOFF_MAX_MS: MAX_MS });

interface Job {
  id: string;
  status: string;
  attempts: number;
  runAt: string;
  updatedAt: string;
  finishedAt: string | null;
  leaseToken: string;
  lastError: unknown;
  version: number;
}

const submit = (queue: string, extra: object = {}) =>
  submitJob<Job>(setup.env, setup.client, { queue, kind: "k", ...extra });
const poll = async (queue: string) => (await processNext<Job>(setup.env, setup.worker, { queues: [queue] })).jobs;
const failJob = async (j: Job, extra: object = {}) => {
  const r = await setup.env.http().post(`/v1/jobs/${j.id}/fail`).set("authorization", setup.worker)
    .send({ leaseToken: j.leaseToken, error: { message: "boom", code: "E1" }, ...extra });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as Job;
};
const runNow = (id: string) => setup.env.c.sql`UPDATE jobs SET run_at = now() - interval '1 millisecond' WHERE id = ${id}`;
const delayMs = (j: Job) => new Date(j.runAt).getTime() - new Date(j.updatedAt).getTime();

describe("fail and retry", () => {
  it("fail with attempts left → queued with a future runAt inside the backoff ceiling; the last attempt → failed", async () => {
    const job = await submit("r1", { maxAttempts: 3, webhookUrl: "https://example.com/h" });
    for (let attempt = 1; attempt <= 3; attempt++) {
      const [c] = await poll("r1");
      expect(c, `attempt ${attempt}`).toMatchObject({ id: job.id, attempts: attempt, status: "running" });
      const f = await failJob(c!);
      if (attempt < 3) {
        expect(f).toMatchObject({ status: "queued", attempts: attempt, finishedAt: null, lastError: { message: "boom", code: "E1" } });
        // Full jitter: uniform in [0, min(max, base * 2^(attempts-1))).
        const ceiling = Math.min(MAX_MS, BASE_MS * 2 ** (attempt - 1));
        expect(delayMs(f)).toBeGreaterThanOrEqual(0);
        expect(delayMs(f)).toBeLessThanOrEqual(ceiling);
        // Not claimable before runAt (a draw of under a second would make this check meaningless; it is 1 in 20,000).
        if (new Date(f.runAt).getTime() > Date.now() + 500) expect(await poll("r1")).toEqual([]);
        const claimById = await setup.env.http().post(`/v1/jobs/${job.id}/claim`).set("authorization", setup.worker).send({ workerId: "w" });
        if (new Date(f.runAt).getTime() > Date.now() + 500) {
          expect(claimById.status).toBe(409);
          expect(claimById.body.code).toBe("not_claimable");
        }
        // The old lease is gone with the retry.
        const late = await completeJob(setup.env, setup.worker, job.id, c!.leaseToken);
        expect(late.status).toBe(409);
        await runNow(job.id);
      } else {
        expect(f).toMatchObject({ status: "failed", attempts: 3, lastError: { message: "boom", code: "E1" } });
        expect(f.finishedAt).not.toBeNull();
      }
    }
    expect(await poll("r1")).toEqual([]);
    const events = await setup.env.c.sql<{ eventType: string }[]>`SELECT event_type FROM webhook_outbox WHERE subject_id = ${job.id}`;
    expect(events.map((e) => e.eventType)).toEqual(["job.failed"]);
  });

  it("backoff delays stay within their doubling ceiling, capped at the max, and are jittered", async () => {
    const job = await submit("r2", { maxAttempts: 100 });
    const seen: number[] = [];
    for (let attempt = 1; attempt <= 6; attempt++) {
      await runNow(job.id);
      const [c] = await poll("r2");
      const f = await failJob(c!);
      expect(f.status).toBe("queued");
      const d = delayMs(f);
      seen.push(d);
      expect(d).toBeGreaterThanOrEqual(0);
      expect(d, `attempt ${attempt}`).toBeLessThanOrEqual(Math.min(MAX_MS, BASE_MS * 2 ** (attempt - 1)));
    }
    // Jittered, not constant.
    expect(new Set(seen).size).toBeGreaterThan(1);
  });

  it("retryable: false → failed at once, with attempts left", async () => {
    const job = await submit("r3", { maxAttempts: 5, webhookUrl: "https://example.com/h" });
    const [c] = await poll("r3");
    const f = await failJob(c!, { retryable: false });
    expect(f).toMatchObject({ id: job.id, status: "failed", attempts: 1 });
    expect(await poll("r3")).toEqual([]);
    const [{ n }] = await setup.env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM webhook_outbox WHERE subject_id = ${job.id}`;
    expect(n).toBe(1);
  });

  it("fail after a cancel request → cancelled, not retried", async () => {
    const job = await submit("r4", { maxAttempts: 5 });
    const [c] = await poll("r4");
    const cancel = await setup.env.http().post(`/v1/jobs/${job.id}/cancel`).set("authorization", setup.client);
    expect(cancel.body).toMatchObject({ status: "running", cancelRequested: true });
    const hb = await setup.env.http().post(`/v1/jobs/${job.id}/heartbeat`).set("authorization", setup.worker).send({ leaseToken: c!.leaseToken });
    expect(hb.body.cancelRequested).toBe(true);
    const f = await failJob(c!, { retryAfterSeconds: 0 });
    expect(f).toMatchObject({ status: "cancelled", attempts: 1 });
    // Repeating the same fail is answered with the same job, not a second transition.
    const again = await failJob(c!);
    expect(again).toEqual(f);
    await runNow(job.id);
    expect(await poll("r4")).toEqual([]);
  });

  it("retryAfterSeconds is honoured exactly, overriding backoff; 0 is claimable at once", async () => {
    const job = await submit("r5");
    const [c] = await poll("r5");
    const f = await failJob(c!, { retryAfterSeconds: 90 });
    expect(f.status).toBe("queued");
    expect(delayMs(f)).toBeGreaterThanOrEqual(89_999);
    expect(delayMs(f)).toBeLessThanOrEqual(90_001);
    expect(await poll("r5")).toEqual([]);
    await runNow(job.id);
    const [c2] = await poll("r5");
    expect(c2).toMatchObject({ id: job.id, attempts: 2 });
    const f2 = await failJob(c2!, { retryAfterSeconds: 0 });
    expect(f2.status).toBe("queued");
    const [c3] = await poll("r5");
    expect(c3).toMatchObject({ id: job.id, attempts: 3 });
  });
});
