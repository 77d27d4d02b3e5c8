import { afterAll, describe, expect, it } from "vitest";
import { createWorker, type Worker } from "../../src/worker/inProcess.js";
import { until } from "../helpers/until.js";
import { useTestEnv } from "../helpers/app.js";

// The in-process worker claims as soon as a slot frees (issue 26 point 5): with concurrency 4
// and long jobs, a finished job's slot is refilled while the other three still run.
const setup = useTestEnv("worker_refill");
const workers: Worker[] = [];
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop(1000)));
});

describe("createWorker refill", () => {
  it("with concurrency 4 and long jobs, no slot sits idle while jobs are queued", async () => {
    const n = 8;
    for (let i = 0; i < n; i++) {
      const r = await setup.env.c.services.jobs.submit("acme", { queue: "refill", kind: "long", payload: { i } });
      if (!r.ok) throw new Error(r.error);
    }
    // Each job runs until the test lets it finish.
    const finish = new Map<number, () => void>();
    const w = createWorker({
      container: setup.env.c,
      queues: ["refill"],
      concurrency: 4,
      waitMs: 1000,
      handlers: {
        long: (j) =>
          new Promise<unknown>((resolve) => {
            finish.set((j.payload as { i: number }).i, () => resolve({ ok: true }));
          }),
      },
    });
    workers.push(w);
    const running = () => [...finish.keys()];
    await until("four jobs to run", () => (finish.size === 4 ? true : undefined), 20_000);
    expect(finish.size).toBe(4);

    // One finishes: its slot takes the next job while the other three are still running.
    const [first, ...others] = running();
    finish.get(first!)!();
    await until("a fifth job to start", () => (finish.size === 5 ? true : undefined), 20_000);
    expect(w.stats.claimed).toBe(5);
    // Then a second one: again refilled at once, with three of the first four still held.
    finish.get(others[0]!)!();
    await until("a sixth job to start", () => (finish.size === 6 ? true : undefined), 20_000);
    expect(w.stats.claimed).toBe(6);
    for (const f of finish.values()) f();
    await until("every job to run", () => (finish.size === n ? true : undefined), 20_000);
    for (const f of finish.values()) f();
    await until("every job to succeed", () => (w.stats.succeeded === n ? true : undefined), 20_000);
  });
});
