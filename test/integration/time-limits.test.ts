import { afterAll, describe, expect, it } from "vitest";
import { every } from "../../src/worker/every.js";
import { createWorker, JobTimeoutError, type Worker } from "../../src/worker/inProcess.js";
import { reapOnce } from "../../src/worker/reaper.js";
import { completeJob, processNext, submitJob, useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

// Execution timeouts (DESIGN.md "Time limits and deduplication"): the deadline is set by the
// claim, caps the lease, and the reaper ends the attempt even while it heartbeats.
const setup = useTestEnv("time_limits", { JOBLINE_BACKOFF_BASE_MS: 0, JOBLINE_BACKOFF_MAX_MS: 0 });
const workers: Worker[] = [];
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop(1000)));
});

type Claimed = { id: string; leaseToken: string; attempts: number; deadlineAt: string | null; leaseExpiresAt: string; startedAt: string };
const http = () => setup.env.http();
const poll = async (queue: string) => (await processNext<Claimed>(setup.env, setup.worker, { queues: [queue], leaseSeconds: 60 })).jobs;
const heartbeat = (id: string, leaseToken: string) =>
  http().post(`/v1/jobs/${id}/heartbeat`).set("authorization", setup.worker).send({ leaseToken, leaseSeconds: 60 });
const row = async (id: string) =>
  (await setup.env.c.sql<{ status: string; attempts: number; lastError: { code?: string } | null }[]>`
    SELECT status::text, attempts, last_error FROM jobs WHERE id = ${id}`)[0]!;
const events = (id: string) => setup.env.c.sql<{ eventType: string }[]>`SELECT event_type FROM webhook_outbox WHERE subject_id = ${id}`;

/** Heartbeats every 100 ms, as a hung handler's heartbeat thread would, until one is refused. */
async function heartbeatUntilRefused(j: Claimed) {
  for (;;) {
    const r = await heartbeat(j.id, j.leaseToken);
    if (r.status !== 200) return r;
    expect(r.body.deadlineAt).toBe(j.deadlineAt);
    // The lease never reaches past the deadline, however long the heartbeat asks for.
    expect(Date.parse(r.body.leaseExpiresAt)).toBeLessThanOrEqual(Date.parse(j.deadlineAt!));
    await new Promise((res) => setTimeout(res, 100));
  }
}

describe("execution timeout", () => {
  it("an attempt that heartbeats forever is timed out and retried; its late complete is 409; one event", async () => {
    const job = await submitJob(setup.env, setup.client, {
      queue: "t1", kind: "k", timeoutSeconds: 1, maxAttempts: 2, webhookUrl: "https://example.com/hook",
    });
    expect(job).toMatchObject({ timeoutSeconds: 1, deadlineAt: null });

    for (const attempt of [1, 2]) {
      const [a] = await poll("t1");
      expect(a).toMatchObject({ id: job.id, attempts: attempt });
      expect(Date.parse(a!.deadlineAt!) - Date.parse(a!.startedAt)).toBe(1000);
      expect(Date.parse(a!.leaseExpiresAt)).toBe(Date.parse(a!.deadlineAt!));

      // Past the deadline the heartbeat is refused with `timeout`, before any reaper ran.
      const refused = await heartbeatUntilRefused(a!);
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe("timeout");
      expect((await row(job.id)).status).toBe("running");

      expect(await reapOnce(setup.env.c)).toBe(1);
      const after = await row(job.id);
      expect(after).toMatchObject({ status: attempt === 1 ? "queued" : "failed", attempts: attempt, lastError: { code: "timeout" } });
      const late = await completeJob(setup.env, setup.worker, job.id, a!.leaseToken, { late: true });
      expect(late.status).toBe(409);
      expect(late.body.code).toBe("not_running");
    }
    expect((await events(job.id)).map((e) => e.eventType)).toEqual(["job.failed"]);
  });

  it("a job without timeoutSeconds has no deadline and keeps its lease by heartbeats", async () => {
    await submitJob(setup.env, setup.client, { queue: "t2", kind: "k" });
    const [a] = await poll("t2");
    expect(a!.deadlineAt).toBeNull();
    const hb = await heartbeat(a!.id, a!.leaseToken);
    expect(hb.status).toBe(200);
    expect(hb.body.deadlineAt).toBeNull();
    expect(Date.parse(hb.body.leaseExpiresAt) - Date.now()).toBeGreaterThan(30_000);
  });

  it("createWorker aborts the handler's signal at the deadline; the job is retried, then fails with code timeout", async () => {
    const reaper = every("reaper", 200, () => reapOnce(setup.env.c), setup.env.c);
    try {
      const reasons: unknown[] = [];
      const job = await submitJob(setup.env, setup.client, {
        queue: "t3", kind: "hang", timeoutSeconds: 1, maxAttempts: 2, webhookUrl: "https://example.com/hook",
      });
      const w = createWorker({
        container: setup.env.c,
        queues: ["t3"],
        waitMs: 500,
        concurrency: 2,
        leaseSeconds: 30,
        handlers: {
          // Heartbeats forever; stops only when its signal says so.
          hang: async (_j, ctx) => {
            while (!ctx.signal.aborted) {
              await ctx.heartbeat();
              await new Promise((r) => setTimeout(r, 100));
            }
            reasons.push(ctx.signal.reason);
            throw new Error("gave up");
          },
        },
      });
      workers.push(w);
      await until("the job to fail", async () => ((await row(job.id)).status === "failed" && reasons.length === 2 ? true : undefined), 20_000, 100);
      expect(await row(job.id)).toMatchObject({ attempts: 2, lastError: { code: "timeout" } });
      expect(reasons).toHaveLength(2);
      for (const r of reasons) expect(r).toBeInstanceOf(JobTimeoutError);
      expect((await events(job.id)).map((e) => e.eventType)).toEqual(["job.failed"]);
    } finally {
      await reaper.stop();
    }
  });
});
