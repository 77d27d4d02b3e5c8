import { describe, expect, it, vi } from "vitest";
import { toNewJob } from "../../src/services/jobs.js";
import { until } from "../e2e/helpers/util.js";
import { useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("longpoll_wakeup");

describe("a long poll and a submit that races it", () => {
  it("a job committed between the poll's empty claim and its wait is claimed at once, not after the 1 s re-check", async () => {
    const svc = setup.env.c.services.jobs;
    const notifier = setup.env.c.notifier;
    const realWait = notifier.wait.bind(notifier);
    let submitted: Promise<unknown> | null = null;
    const woken: unknown[] = [];
    // The job lands exactly in the gap: after the claim found nothing, before the poll waits (in
    // production, while the poll runs a promotion). It comes from another API process: inserted
    // and announced on a connection of its own, and the NOTIFY is heard before the wait begins.
    const spy = vi.spyOn(notifier, "wait").mockImplementation(async (...args: Parameters<typeof notifier.wait>) => {
      if (!submitted) {
        const before = notifier.mark();
        submitted = setup.env.c.sql.begin((tx) => setup.env.c.repos.jobs.insertMany([toNewJob("acme", { queue: "race-gap", kind: "k", payload: {} })], tx));
        await submitted;
        await setup.env.c.sql`SELECT pg_notify('jobline_jobs', 'race-gap')`;
        await until("the NOTIFY to be heard", () => (notifier.mark() > before ? true : undefined), 5000, 1);
      }
      const woke = await realWait(...args);
      woken.push(woke);
      return woke;
    });
    try {
      const rows = await svc.claimNext({ queues: ["race-gap"], scope: null, workerId: "w", leaseSeconds: 30, max: 1, waitMs: 5000 });
      expect(rows).toHaveLength(1);
      // Before the fix the wake-up was lost and the poll's first wait ran out at its 1 s re-check
      // (a falsy answer); the announcement heard before the wait must end it at once, whatever the load.
      expect(woken[0]).toBeTruthy();
    } finally {
      spy.mockRestore();
    }
  });

  it("a poll that cannot take the jobs claims about once per submit, not once more for the NOTIFY's echo", async () => {
    const svc = setup.env.c.services.jobs;
    const claims = vi.spyOn(setup.env.c.repos.jobs, "claimNextFor");
    try {
      // The poll wants kind "a"; only kind "b" arrives, 40 submits one after another.
      const poll = svc.claimNext({ queues: ["echo"], kinds: ["a"], scope: null, workerId: "w", leaseSeconds: 30, max: 1, waitMs: 3000 });
      await until("the poll to wait", () => (claims.mock.calls.length > 0 ? true : undefined), 5000, 1);
      const before = claims.mock.calls.length;
      for (let i = 0; i < 40; i++) {
        const r = await svc.submit("acme", { queue: "echo", kind: "b", payload: { i } });
        expect(r.ok).toBe(true);
        await new Promise((r) => setTimeout(r, 10));
      }
      expect(await poll).toEqual([]);
      const during = claims.mock.calls.length - before;
      console.log(`claims for 40 submits the poll cannot take: ${during}`);
      // Counting its own NOTIFY's echo as a second announcement made it about 80.
      expect(during).toBeLessThanOrEqual(50);
    } finally {
      claims.mockRestore();
    }
  });

  it("a retry that is due wakes a waiting poll even when this process's clock is behind the database's", async () => {
    const svc = setup.env.c.services.jobs;
    const submitted = await svc.submit("acme", { queue: "skew", kind: "k", payload: {} });
    expect(submitted.ok).toBe(true);
    const [job] = await svc.claimNext({ queues: ["skew"], scope: null, workerId: "w1", leaseSeconds: 30, max: 1, waitMs: 0 });
    const t0 = performance.now();
    const poll = svc.claimNext({ queues: ["skew"], scope: null, workerId: "w2", leaseSeconds: 30, max: 1, waitMs: 5000 });
    await new Promise((r) => setTimeout(r, 50));
    const realNow = Date.now.bind(Date);
    const skew = vi.spyOn(Date, "now").mockImplementation(() => realNow() - 3_600_000);
    try {
      const failed = await svc.fail(job!.id, null, { leaseToken: job!.leaseToken!, error: { message: "again" }, retryable: true, retryAfterSeconds: 0 });
      expect(failed.ok && failed.value.status).toBe("queued");
    } finally {
      skew.mockRestore();
    }
    const rows = await poll;
    expect(rows.map((r) => r.id)).toEqual([job!.id]);
    // Judged by this process's clock, the retry looked an hour ahead: no announcement, and the
    // poll slept until its 1 s re-check.
    expect(performance.now() - t0).toBeLessThan(800);
  });

  it("an announcement for another queue does not cut a wait short", async () => {
    const notifier = setup.env.c.notifier;
    const since = notifier.mark();
    notifier.notify("elsewhere");
    const t0 = performance.now();
    await notifier.wait(["mine"], 200, undefined, since);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
  });
});
