import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { createWorker, type HandlerSpec, MAX_BATCH, NonRetryableError, type Worker } from "../../src/worker/inProcess.js";
import { every } from "../../src/worker/every.js";
import { reapOnce } from "../../src/worker/reaper.js";
import { jobDto, WORKER_FIELDS } from "../../src/services/representation.js";
import { until } from "../e2e/helpers/util.js";
import { submitDirect, useTestEnv } from "../helpers/app.js";
import { refuseCompletions } from "../helpers/faults.js";

const setup = useTestEnv("worker_handlers", { JOBLINE_BACKOFF_BASE_MS: 0, JOBLINE_BACKOFF_MAX_MS: 0 });
const workers: Worker[] = [];
let reaper: { stop: () => Promise<void> } | null = null;

beforeAll(async () => {
  reaper = every("reaper", 100, () => reapOnce(setup.env.c), setup.env.c);
});
afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop(1000)));
  await reaper?.stop();
});

const submit = (queue: string, kind: string, payload: unknown = {}, extra: Record<string, unknown> = {}) =>
  submitDirect(setup.env, "acme", { queue, kind, payload, ...extra });
const job = async (id: string) => (await setup.env.c.repos.jobs.findById(id, null))!;
const start = (o: HandlerSpec) => {
  const w = createWorker({ container: setup.env.c, waitMs: 1000, ...o });
  workers.push(w);
  return w;
};

describe("createWorker", () => {
  it("runs every job exactly once and records each result (2,000 jobs, concurrency 20)", async () => {
    const n = 2000;
    const seen = new Map<string, number>();
    const ids = new Set<string>();
    for (let i = 0; i < n; i += 500) {
      const chunk = await Promise.all(Array.from({ length: Math.min(500, n - i) }, (_, k) => submit("bulk", "echo", { i: i + k })));
      for (const j of chunk) ids.add(j.id);
    }
    const t0 = performance.now();
    const w = start({
      queues: ["bulk"],
      concurrency: 20,
      handlers: {
        echo: async (j) => {
          seen.set(j.id, (seen.get(j.id) ?? 0) + 1);
          return { i: (j.payload as { i: number }).i };
        },
      },
    });
    await until("all bulk jobs to succeed", () => (w.stats.succeeded === n ? true : undefined), 60_000, 10);
    const secs = (performance.now() - t0) / 1000;
    console.log(`createWorker: ${n} no-op jobs in ${secs.toFixed(2)} s = ${Math.round(n / secs)} jobs/s (concurrency 20, same process as PostgreSQL clients)`);
    await w.stop();
    expect(seen.size).toBe(n);
    expect([...seen.values()].every((v) => v === 1)).toBe(true);
    expect([...seen.keys()].every((id) => ids.has(id))).toBe(true);
    const rows = await setup.env.c.sql<{ status: string; attempts: number; ok: boolean; n: number }[]>`
      SELECT status::text, attempts, (result->>'i')::int = (payload->>'i')::int AS ok, count(*)::int AS n
      FROM jobs WHERE queue = 'bulk' GROUP BY 1, 2, 3`;
    expect(rows).toEqual([{ status: "succeeded", attempts: 1, ok: true, n }]);
    expect(w.stats).toEqual({ claimed: n, succeeded: n, failed: 0, lost: 0 });
  });

  // batchSize 2 runs two claim loops at once: their reservations must still respect the bound.
  it.each([{ batchSize: undefined }, { batchSize: 2 }])("never holds more than `concurrency` jobs leased (batchSize $batchSize)", async ({ batchSize }) => {
    let active = 0;
    let maxActive = 0;
    const queue = `bounded${batchSize ?? ""}`;
    for (let i = 0; i < 30; i++) await submit(queue, "slow");
    const w = start({
      queues: [queue],
      concurrency: 4,
      ...(batchSize ? { batchSize } : {}),
      handlers: {
        slow: async () => {
          active++;
          maxActive = Math.max(maxActive, active);
          const [r] = await setup.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE queue = ${queue} AND status = 'running'`;
          expect(r!.n).toBeLessThanOrEqual(4);
          await new Promise((r) => setTimeout(r, 20));
          active--;
          return null;
        },
      },
    });
    await until("30 bounded jobs", () => (w.stats.succeeded === 30 ? true : undefined));
    await w.stop();
    expect(maxActive).toBeLessThanOrEqual(4);
    expect(maxActive).toBeGreaterThan(1);
  });

  it("a thrown error fails the job with its message and retries it; NonRetryableError fails at once", async () => {
    const flaky = await submit("errors", "flaky", {}, { maxAttempts: 3 });
    const fatal = await submit("errors", "fatal", {}, { maxAttempts: 3 });
    const w = start({
      queues: ["errors"],
      concurrency: 2,
      handlers: {
        flaky: async (j) => {
          if (j.attempts < 3) throw Object.assign(new Error(`boom ${j.attempts}`), { code: "boom" });
          return "third time";
        },
        fatal: async () => {
          throw new NonRetryableError("bad input", "invalid_input");
        },
      },
    });
    await until("flaky to succeed", async () => ((await job(flaky.id)).status === "succeeded" ? true : undefined));
    await until("fatal to fail", async () => ((await job(fatal.id)).status === "failed" ? true : undefined));
    await w.stop();
    const f = await job(flaky.id);
    expect(f.attempts).toBe(3);
    expect(f.result).toBe("third time");
    expect(f.lastError).toEqual({ message: "boom 2", code: "boom" });
    const d = await job(fatal.id);
    expect(d.attempts).toBe(1);
    expect(d.lastError).toEqual({ message: "bad input", code: "invalid_input" });
  });

  it('fields "worker": handlers get exactly the worker fields, retries and results as usual; by default the full job', async () => {
    const lean = await submit("wfields", "k", { x: 1 }, { maxAttempts: 2 });
    const whole = await submit("wfull", "k", { x: 2 });
    const got: Array<Record<string, unknown>> = [];
    const gotFull: Array<Record<string, unknown>> = [];
    const claims = vi.spyOn(setup.env.c.services.jobs, "claimNext");
    const a = start({
      queues: ["wfields"],
      fields: "worker",
      handlers: {
        k: async (j) => {
          got.push({ ...j });
          if (j.attempts === 1) throw new Error("once");
          return { x: (j.payload as { x: number }).x };
        },
      },
    });
    const b = start({
      queues: ["wfull"],
      handlers: {
        k: async (j) => {
          gotFull.push({ ...j });
          return null;
        },
      },
    });
    await until("both to succeed", async () => ((await job(lean.id)).status === "succeeded" && (await job(whole.id)).status === "succeeded" ? true : undefined));
    await Promise.all([a.stop(), b.stop()]);
    // The claim itself returns only the worker's columns (repositories/jobs/rows.ts).
    const fieldsOf = (queue: string) => new Set(claims.mock.calls.filter(([f]) => f.queues[0] === queue).map(([f]) => f.fields));
    expect([fieldsOf("wfields"), fieldsOf("wfull")]).toEqual([new Set(["worker"]), new Set([undefined])]);
    claims.mockRestore();
    expect(got.map((j) => Object.keys(j))).toEqual([[...WORKER_FIELDS], [...WORKER_FIELDS]]);
    expect(got.map((j) => [j.id, j.queue, j.kind, j.payload, j.attempts, j.maxAttempts])).toEqual([
      [lean.id, "wfields", "k", { x: 1 }, 1, 2],
      [lean.id, "wfields", "k", { x: 1 }, 2, 2],
    ]);
    expect(got[1]!.leaseToken).toBe((await job(lean.id)).leaseToken);
    expect((await job(lean.id)).result).toEqual({ x: 1 });
    expect(Object.keys(gotFull[0]!)).toEqual(Object.keys(jobDto(await job(whole.id))));
    expect(gotFull[0]).toMatchObject({ id: whole.id, status: "running", createdAt: expect.any(String), tags: [] });
  });

  it("an unknown fields value is refused at once, not taken as the full job", () => {
    expect(() => start({ queues: ["wfields"], fields: "Worker" as "worker", handlers: { k: async () => null } })).toThrow(RangeError);
  });

  it("heartbeats keep a job that outlives its lease, while the reaper runs", async () => {
    const j = await submit("long", "long");
    const w = start({
      queues: ["long"],
      concurrency: 1,
      leaseSeconds: 2,
      // Outlives the lease more than twice; heartbeats every 2/3 s keep it.
      handlers: { long: () => new Promise((r) => setTimeout(() => r("done"), 4500)) },
    });
    await until("long to succeed", async () => ((await job(j.id)).status === "succeeded" ? true : undefined), 20_000);
    await w.stop();
    expect((await job(j.id)).attempts).toBe(1);
    expect(w.stats).toMatchObject({ succeeded: 1, lost: 0 });
  });

  it("a completion refused for longer than the lease is sent again until it lands, and heartbeats keep the job meanwhile", async () => {
    // A real fault: the database refuses the first five completions of this queue's jobs (as a
    // statement timeout would), 2.5 s of retries against a 2 s lease, after a handler that
    // outlived its first lease. Before, the worker gave up at the claim's lease expiry (the job
    // was lost and the reaper failed it), and heartbeats ended with the handler.
    const fault = await refuseCompletions(setup.env.c.sql, "blip", 5, "57014");
    try {
      const j = await submit("blip", "slow", {}, { maxAttempts: 1 });
      let runs = 0;
      const w = start({
        queues: ["blip"],
        concurrency: 1,
        leaseSeconds: 2,
        handlers: {
          slow: async () => {
            runs++;
            await new Promise((r) => setTimeout(r, 2500));
            return "done";
          },
        },
      });
      const end = await until("blip to finish", async () => {
        const d = await job(j.id);
        return d.status === "succeeded" || d.status === "failed" ? d : undefined;
      }, 20_000);
      await w.stop();
      expect(await fault.seen()).toBe(6);
      expect(end).toMatchObject({ status: "succeeded", attempts: 1, result: "done" });
      expect(runs).toBe(1);
      expect(w.stats).toMatchObject({ succeeded: 1, lost: 0 });
    } finally {
      await fault.drop();
    }
  });

  it("a handler may destructure, spread, freeze or log its context: heartbeat() and signal still work, a cancel still reaches the signal", async () => {
    const j = await submit("context", "wait");
    const claimedLease = { at: 0 };
    let seen: { keys: string[]; logged: string } | null = null;
    const w = start({
      queues: ["context"],
      concurrency: 1,
      leaseSeconds: 30,
      handlers: {
        wait: async (_job, ctx) => {
          claimedLease.at = (await job(j.id)).leaseExpiresAt!.getTime();
          seen = { keys: Object.keys(ctx).sort(), logged: JSON.stringify(ctx) };
          Object.freeze(ctx);
          // A wrapper that adds its own fields, as handler libraries do.
          const wrapped = { ...ctx, log: () => {} };
          const { signal, heartbeat } = wrapped;
          await new Promise((r) => setTimeout(r, 20));
          await heartbeat();
          // The cancel reaches this worker on its next explicit heartbeat.
          while (!signal.aborted) {
            await new Promise((r) => setTimeout(r, 50));
            await heartbeat();
          }
          throw signal.reason;
        },
      },
    });
    await until("the explicit heartbeat to extend the lease", async () =>
      claimedLease.at > 0 && (await job(j.id)).leaseExpiresAt!.getTime() > claimedLease.at ? true : undefined,
    );
    expect(seen).toEqual({ keys: ["heartbeat", "progress", "signal"], logged: '{"signal":{}}' });
    const c = await setup.env.c.services.jobs.cancel(j.id, null);
    expect(c.ok).toBe(true);
    await until("the job to be cancelled", async () => ((await job(j.id)).status === "cancelled" ? true : undefined), 10_000);
    await w.stop();
    expect((await job(j.id)).lastError).toEqual({ message: "cancel requested" });
    expect(w.stats.failed).toBe(1);
  });

  it("automatic heartbeats keep a lease when the wall clock steps back", async () => {
    const j = await submit("clockstep", "long");
    let runs = 0;
    const realNow = Date.now.bind(Date);
    const w = start({
      queues: ["clockstep"],
      concurrency: 1,
      leaseSeconds: 1,
      handlers: {
        long: async () => {
          runs++;
          // An NTP correction of an hour while the job runs: only this process's clock moves.
          const spy = vi.spyOn(Date, "now").mockImplementation(() => realNow() - 3_600_000);
          try {
            await new Promise((r) => setTimeout(r, 3000));
          } finally {
            spy.mockRestore();
          }
          return "done";
        },
      },
    });
    await until("the job to succeed", async () => ((await job(j.id)).status === "succeeded" ? true : undefined), 20_000);
    await w.stop();
    expect({ runs, attempts: (await job(j.id)).attempts, lost: w.stats.lost }).toEqual({ runs: 1, attempts: 1, lost: 0 });
  });

  it("a cancel request aborts ctx.signal; the handler's error then cancels the job", async () => {
    const j = await submit("cancel", "wait");
    let started = false;
    const w = start({
      queues: ["cancel"],
      concurrency: 1,
      // Heartbeats (every second) bring the news; the lease is long enough that the reaper never does.
      leaseSeconds: 3,
      handlers: {
        wait: (_job, ctx) =>
          new Promise((_, reject) => {
            started = true;
            ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason));
          }),
      },
    });
    await until("the handler to start", () => started || undefined);
    const c = await setup.env.c.services.jobs.cancel(j.id, null);
    expect(c.ok && c.value.cancelRequested).toBe(true);
    await until("the job to be cancelled", async () => ((await job(j.id)).status === "cancelled" ? true : undefined), 10_000);
    await w.stop();
    expect((await job(j.id)).lastError).toEqual({ message: "cancel requested" });
  });

  it("stop() stops claiming and waits for running handlers to finish and be recorded", async () => {
    const j = await submit("stop", "slow");
    let release!: () => void;
    let started = false;
    const w = start({
      queues: ["stop"],
      concurrency: 2,
      handlers: {
        slow: () =>
          new Promise((r) => {
            started = true;
            release = () => r("finished");
          }),
      },
    });
    await until("the handler to start", () => started || undefined);
    let stopped = false;
    const stopping = w.stop().then(() => {
      stopped = true;
    });
    const later = await submit("stop", "slow");
    await new Promise((r) => setImmediate(r));
    expect(stopped).toBe(false);
    release();
    await stopping;
    expect((await job(j.id)).status).toBe("succeeded");
    // Nothing was claimed after stop().
    expect((await job(later.id)).status).toBe("queued");
  });

  it("two stop() calls both resolve once the last job is recorded", async () => {
    await submit("stop2", "slow");
    let release: (() => void) | null = null;
    const w = start({
      queues: ["stop2"],
      concurrency: 1,
      handlers: { slow: () => new Promise((r) => (release = () => r("done"))) },
    });
    await until("the handler to start", () => (release ? true : undefined));
    const resolved: string[] = [];
    const first = w.stop().then(() => resolved.push("first"));
    const second = w.stop().then(() => resolved.push("second"));
    await new Promise((r) => setImmediate(r));
    release!();
    await Promise.all([first, second]);
    expect(resolved.sort()).toEqual(["first", "second"]);
  });

  it("claims at most MAX_BATCH jobs per statement, in parallel claims up to the concurrency", async () => {
    const claimNext = setup.env.c.services.jobs.claimNext;
    const asked: number[] = [];
    let inFlight = 0;
    let most = 0;
    const claims = vi.spyOn(setup.env.c.services.jobs, "claimNext").mockImplementation(async (...args) => {
      asked.push(args[0].max);
      most = Math.max(most, ++inFlight);
      try {
        return await claimNext(...args);
      } finally {
        inFlight--;
      }
    });
    try {
      const w = start({ queues: ["capped"], concurrency: 2 * MAX_BATCH, handlers: { noop: async () => null } });
      await until("both claim loops to claim", () => (asked.length >= 2 ? true : undefined));
      await w.stop();
      expect(asked.slice(0, 2)).toEqual([MAX_BATCH, MAX_BATCH]);
      expect(Math.max(...asked)).toBe(MAX_BATCH);
      expect(most).toBe(2);
    } finally {
      claims.mockRestore();
    }
  });

  it("stop(timeout) also ends the retries of completions that keep failing", async () => {
    await submit("stop3", "fast");
    const completes = vi.spyOn(setup.env.c.services.jobs, "completeOwn").mockRejectedValue(new Error("database away"));
    try {
      const w = start({ queues: ["stop3"], concurrency: 1, handlers: { fast: async () => "ok" } });
      await until("a completion to be tried", () => (completes.mock.calls.length > 0 ? true : undefined));
      await w.stop(100);
      const after = completes.mock.calls.length;
      // Retries were every 500 ms: wait out two of them.
      await new Promise((r) => setTimeout(r, 1200));
      expect(completes.mock.calls.length - after).toBeLessThanOrEqual(1);
      expect(w.stats.lost).toBe(1);
    } finally {
      completes.mockRestore();
    }
  });

  it("stop(timeout) gives up on a handler that does not finish: its job stays leased and the reaper recovers it", async () => {
    const j = await submit("stuck", "stuck");
    let signalled = false;
    const w = start({
      queues: ["stuck"],
      concurrency: 1,
      leaseSeconds: 2,
      handlers: {
        stuck: (_job, ctx) =>
          new Promise(() => {
            ctx.signal.addEventListener("abort", () => {
              signalled = true;
            });
          }),
      },
    });
    await until("the job to run", async () => ((await job(j.id)).status === "running" ? true : undefined));
    await w.stop(200);
    expect(signalled).toBe(true);
    expect((await job(j.id)).status).toBe("running");
    const back = await until("the reaper to requeue it", async () => {
      const r = await job(j.id);
      return r.status === "queued" ? r : undefined;
    }, 10_000);
    expect(back.lastError).toEqual({ message: "lease expired", code: "lease_expired" });
    expect(back.attempts).toBe(1);
  });
});
