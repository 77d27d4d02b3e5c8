import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { until } from "../e2e/helpers/util.js";
import { createTestEnv, type TestEnv } from "../helpers/app.js";

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv("longpoll_wakeup");
});
afterAll(async () => env?.close());

describe("a long poll and a submit that races it", () => {
  it("a job committed between the poll's empty claim and its wait is claimed at once, not after the 1 s re-check", async () => {
    const svc = env.c.services.jobs;
    const notifier = env.c.notifier;
    const realWait = notifier.wait.bind(notifier);
    let submitted: Promise<unknown> | null = null;
    // The submit lands exactly in the gap: after the claim found nothing, before the poll waits
    // (in production, while the poll runs a promotion). Both of its announcements, the local one
    // and the NOTIFY heard back through LISTEN, arrive before the wait begins.
    const spy = vi.spyOn(notifier, "wait").mockImplementation(async (...args: Parameters<typeof notifier.wait>) => {
      if (!submitted) {
        const before = notifier.mark();
        submitted = svc.submit("acme", { queue: "race-gap", kind: "k", payload: {} });
        await submitted;
        await until("the NOTIFY to come back", () => (notifier.mark() >= before + 2 ? true : undefined), 5000, 1);
      }
      return realWait(...args);
    });
    try {
      const t0 = performance.now();
      const rows = await svc.claimNext({ queues: ["race-gap"], scope: null, workerId: "w", leaseSeconds: 30, max: 1, waitMs: 5000 });
      const ms = performance.now() - t0;
      expect(rows).toHaveLength(1);
      // Before the fix the wake-up was lost and the poll slept until its 1 s re-check.
      expect(ms).toBeLessThan(500);
    } finally {
      spy.mockRestore();
    }
  });

  it("an announcement for another queue does not cut a wait short", async () => {
    const notifier = env.c.notifier;
    const since = notifier.mark();
    notifier.notify("elsewhere");
    const t0 = performance.now();
    await notifier.wait(["mine"], 200, undefined, since);
    expect(performance.now() - t0).toBeGreaterThanOrEqual(150);
  });
});
