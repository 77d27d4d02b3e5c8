import { getEventListeners } from "node:events";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  type WorkerJob,
  createJoblineClient,
  JobCancelRequestedError,
  JoblineApiError,
  type JoblineClient,
  type JobHandler,
  JobTimeoutError,
  LeaseLostError,
  runHttpWorker,
  type RunHttpWorkerOptions,
  unwrap,
} from "../../clients/typescript/src/index.js";
import { reapOnce } from "../../src/worker/reaper.js";
import { useTestEnv } from "../helpers/app.js";
import { refuseCompletions } from "../helpers/faults.js";
import { until } from "../helpers/until.js";

/**
 * runHttpWorker over real HTTP against the real app (listening on 127.0.0.1) and a real
 * PostgreSQL: bounded concurrency, heartbeats, cancel, lost leases, failure reporting, stop.
 */

/** Fails if `probe` turns true within `ms` (a bounded check for something that must not happen). */
async function never(what: string, probe: () => Promise<boolean>, ms: number): Promise<void> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if (await probe()) throw new Error(`unexpectedly: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const deferred = <T = void>() => {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => {
    resolve = r;
  });
  return { promise, resolve };
};

interface Call {
  path: string;
  body: Record<string, unknown> | null;
  /** "pending", the HTTP status, or the error name it rejected with. */
  outcome: "pending" | number | string;
}

/** A fetch that records every call the SDK makes (and can cut the network for some). */
function recordingFetch() {
  const calls: Call[] = [];
  /** failCompletes: how many complete requests (single or batch) to cut next, as a reset connection would. */
  /** resetCarryingPoll: a poll carrying completions reaches the server (they commit), then meets a reset connection when this settles. */
  const state = { dropHeartbeats: false, offline: false, failCompletes: 0, resetCarryingPoll: null as Promise<void> | null };
  const fetchFn = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    const text = request.body ? await request.clone().text() : "";
    const call: Call = { path, body: text ? (JSON.parse(text) as Record<string, unknown>) : null, outcome: "pending" };
    calls.push(call);
    if (state.offline || (state.dropHeartbeats && path.endsWith("/heartbeat"))) {
      call.outcome = "TypeError";
      throw new TypeError("fetch failed (test: network cut)");
    }
    if (path === "/v1/process-next" && Array.isArray(call.body?.complete) && state.resetCarryingPoll) {
      const cut = new AbortController();
      fetch(new Request(request, { signal: cut.signal })).catch(() => {});
      await state.resetCarryingPoll;
      cut.abort();
      call.outcome = "TypeError";
      throw new TypeError("fetch failed (test: connection reset)", { cause: { code: "ECONNRESET" } });
    }
    if (path.endsWith("/complete") && state.failCompletes > 0) {
      state.failCompletes--;
      call.outcome = "TypeError";
      throw new TypeError("fetch failed (test: connection reset)", { cause: { code: "ECONNRESET" } });
    }
    try {
      const r = await fetch(request);
      call.outcome = r.status;
      return r;
    } catch (e) {
      call.outcome = e instanceof Error ? e.name : String(e);
      throw e;
    }
  };
  return { calls, state, fetch: fetchFn };
}

const setup = useTestEnv("sdk_worker", {}, { listen: true });
let client: JoblineClient;
const stops: AbortController[] = [];
const runs: Promise<unknown>[] = [];

beforeAll(async () => {
  client = createJoblineClient({ baseUrl: setup.base, apiKey: setup.client });
});
afterAll(async () => {
  for (const s of stops) s.abort();
  await Promise.allSettled(runs);
  // Every worker has stopped, so no request is in flight. Undici can leave a socket that
  // connected (after an aborted request) but never sent one; Node counts it as a request in
  // progress: useTestEnv's listen option closes such sockets before the server's close.
});

/** A worker whose `wait` handler blocks until ctx.signal aborts, then rejects with its reason. */
function startAbortWaiter(queue: string, leaseSeconds: number) {
  const started = deferred<WorkerJob>();
  const seen: { reason?: unknown } = {};
  const w = startWorker(
    queue,
    {
      wait: (j, ctx) => {
        started.resolve(j);
        return new Promise((_, reject) =>
          ctx.signal.addEventListener("abort", () => {
            seen.reason = ctx.signal.reason;
            reject(ctx.signal.reason);
          }),
        );
      },
    },
    { leaseSeconds },
  );
  return { w, started, seen };
}

function startWorker(queue: string, handlers: Record<string, JobHandler>, opts: Partial<RunHttpWorkerOptions> = {}) {
  const rec = recordingFetch();
  const stop = new AbortController();
  stops.push(stop);
  const errors: unknown[] = [];
  const run = runHttpWorker({
    client: createJoblineClient({ baseUrl: setup.base, apiKey: setup.worker, fetch: rec.fetch }),
    queues: [queue],
    handlers,
    signal: stop.signal,
    waitMs: 1_000,
    onError: (e) => errors.push(e),
    ...opts,
  });
  runs.push(run.catch(() => {}));
  return { run, stop, rec, errors };
}

const submit = (queue: string, kind: string, extra: { payload?: unknown; maxAttempts?: number; timeoutSeconds?: number } = {}) =>
  unwrap(client.POST("/v1/jobs", { body: { queue, kind, ...extra } }));
const getJob = (id: string) => unwrap(client.GET("/v1/jobs/{id}", { params: { path: { id } } }));
const listJobs = (queue: string, status: "queued" | "running" | "succeeded" | "failed" | "cancelled") =>
  unwrap(client.GET("/v1/jobs", { params: { query: { queue, status, limit: 500 } } })).then((l) => l.items);

describe("runHttpWorker", () => {
  it("runs at most `concurrency` handlers and leases no more jobs than it has free slots", async () => {
    const gate = deferred();
    let running = 0;
    let maxRunning = 0;
    const ids = [];
    for (let i = 0; i < 7; i++) ids.push((await submit("conc", "gated", { payload: { i } })).id);
    const w = startWorker(
      "conc",
      {
        gated: async (job) => {
          running++;
          maxRunning = Math.max(maxRunning, running);
          await gate.promise;
          running--;
          return { i: (job.payload as { i: number }).i };
        },
      },
      { concurrency: 3 },
    );
    await until("3 handlers running", () => (running === 3 ? true : undefined));
    expect((await listJobs("conc", "running")).length).toBe(3);
    expect((await listJobs("conc", "queued")).length).toBe(4);
    gate.resolve();
    await until("all 7 succeeded", async () => ((await listJobs("conc", "succeeded")).length === 7 ? true : undefined));
    expect(maxRunning).toBe(3);
    for (const c of w.rec.calls.filter((c) => c.path === "/v1/process-next")) {
      expect(c.body).toMatchObject({ queues: ["conc"], kinds: ["gated"] });
      expect(c.body!.max as number).toBeGreaterThanOrEqual(1);
      expect(c.body!.max as number).toBeLessThanOrEqual(3);
    }
    for (const id of ids) {
      const j = await getJob(id);
      expect(j.attempts).toBe(1);
      expect(j.result).toEqual({ i: (j.payload as { i: number }).i });
    }
    w.stop.abort();
    expect(await w.run).toEqual({ claimed: 7, succeeded: 7, failed: 0, abandoned: 0 });
    expect(w.errors).toEqual([]);
  });

  it("a completion made while the worker waits for a slot rides the next poll: no request of its own", async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await submit("ride", "echo", { payload: { i } })).id);
    const w = startWorker("ride", { echo: (job) => ({ echoed: job.payload }) }, { concurrency: 1 });
    await until("all 5 succeeded", async () => ((await listJobs("ride", "succeeded")).length === 5 ? true : undefined));
    w.stop.abort();
    expect(await w.run).toEqual({ claimed: 5, succeeded: 5, failed: 0, abandoned: 0 });
    expect(w.errors).toEqual([]);
    // With one slot, every job ends while the loop waits for it, so each completion is carried
    // by exactly one poll. Only one whose poll got no answer (the last one, cut by the stop
    // while it waited for more jobs) is sent again (in the stop's batch): it may not have been applied.
    const polls = w.rec.calls.filter((c) => c.path === "/v1/process-next" && Array.isArray(c.body?.complete));
    const idsOf = (cs: Call[]) => cs.flatMap((c) => (c.body!.complete as Array<{ id: string }>).map((a) => a.id));
    expect(idsOf(polls).sort()).toEqual([...ids].sort());
    const unanswered = idsOf(polls.filter((c) => c.outcome !== 200));
    const alone = w.rec.calls
      .filter((c) => c.path.endsWith("/complete"))
      .flatMap((c) => (c.path === "/v1/jobs/complete" ? (c.body!.items as Array<{ id: string }>).map((a) => a.id) : [c.path.split("/")[3]]));
    expect(alone.every((id) => unanswered.includes(id!))).toBe(true);
    expect(alone.length).toBeLessThanOrEqual(1);
    for (const id of ids) {
      const j = await getJob(id);
      expect(j.attempts).toBe(1);
      expect(j.result).toEqual({ echoed: j.payload });
    }
  });

  it("handlers that end together go out in one wide poll carrying all their completions", async () => {
    const ids = [];
    for (let i = 0; i < 12; i++) ids.push((await submit("wide", "gated", { payload: { i } })).id);
    const gate = deferred();
    let started = 0;
    const w = startWorker("wide", { gated: async () => { started++; await gate.promise; return null; } }, { concurrency: 12 });
    await until("all 12 running", async () => (started === 12 ? true : undefined));
    gate.resolve();
    await until("all 12 succeeded", async () => ((await listJobs("wide", "succeeded")).length === 12 ? true : undefined));
    // The poll that carried them long-polls (1 s) for more; stopping before its answer would send them again alone.
    const carrying = w.rec.calls.filter((c) => c.path === "/v1/process-next" && Array.isArray(c.body?.complete));
    await until("the carrying poll answered", async () => (carrying.every((c) => c.outcome === 200) ? true : undefined));
    w.stop.abort();
    expect(await w.run).toEqual({ claimed: 12, succeeded: 12, failed: 0, abandoned: 0 });
    // The twelve slots freed in one turn: the next poll asks for twelve jobs and carries every
    // completion; none is sent on its own or in a batch of its own.
    expect(carrying.length).toBe(1);
    expect((carrying[0]!.body!.complete as Array<{ id: string }>).map((a) => a.id).sort()).toEqual([...ids].sort());
    expect(carrying[0]!.body!.max).toBe(12);
    expect(w.rec.calls.filter((c) => c.path.endsWith("/complete"))).toEqual([]);
  });

  it("beyond 100 free slots, a poll asks for 100 jobs and no request carries more than 100 completions", async () => {
    const n = 130;
    const ids = (await Promise.all(Array.from({ length: n }, (_, i) => submit("wide150", "gated", { payload: { i } })))).map((j) => j.id);
    const gate = deferred();
    let started = 0;
    const w = startWorker("wide150", { gated: async () => { started++; await gate.promise; return null; } }, { concurrency: 150 });
    await until(`all ${n} running`, async () => (started === n ? true : undefined));
    const polls = w.rec.calls.filter((c) => c.path === "/v1/process-next");
    expect(polls[0]!.body!.max).toBe(100);
    for (const p of polls) expect(p.body!.max as number).toBeLessThanOrEqual(100);
    // All 130 end in one turn: their completions go out 100 at most per request (a poll's
    // `complete` or a batch), the first carrying a full 100.
    gate.resolve();
    await until(`all ${n} succeeded`, async () => ((await listJobs("wide150", "succeeded")).length === n ? true : undefined));
    w.stop.abort();
    expect(await w.run).toEqual({ claimed: n, succeeded: n, failed: 0, abandoned: 0 });
    expect(w.errors).toEqual([]);
    const carried = w.rec.calls
      .map((c) => (c.path === "/v1/process-next" ? c.body?.complete : c.path === "/v1/jobs/complete" ? c.body?.items : undefined) as Array<{ id: string }> | undefined)
      .filter((items) => items !== undefined);
    expect(carried[0]!.length).toBe(100);
    for (const items of carried) expect(items.length).toBeLessThanOrEqual(100);
    expect(new Set(carried.flat().map((a) => a.id))).toEqual(new Set(ids));
    for (const id of ids.slice(0, 5)) expect((await getJob(id)).attempts).toBe(1);
  });

  it("completions that end while a long poll is out are sent without waiting for it", async () => {
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push((await submit("flush", "gated", { payload: { i } })).id);
    const gate = deferred();
    let started = 0;
    // Four slots, three jobs: the loop long-polls (10 s) for the fourth while the three run.
    const w = startWorker("flush", { gated: async () => { started++; await gate.promise; return null; } }, { concurrency: 4, waitMs: 10_000 });
    await until("all 3 running", async () => (started === 3 ? true : undefined));
    await until("the long poll is out", async () =>
      w.rec.calls.filter((c) => c.path === "/v1/process-next" && c.outcome === "pending").length === 1 ? true : undefined,
    );
    const t0 = Date.now();
    gate.resolve();
    await until("all 3 succeeded", async () => ((await listJobs("flush", "succeeded")).length === 3 ? true : undefined));
    // Well before the 10 s poll returns: one batch complete took all three.
    expect(Date.now() - t0).toBeLessThan(8_000);
    const batches = w.rec.calls.filter((c) => c.path === "/v1/jobs/complete");
    expect(batches.length).toBe(1);
    expect((batches[0]!.body!.items as Array<{ id: string }>).map((a) => a.id).sort()).toEqual([...ids].sort());
    w.stop.abort();
    expect(await w.run).toEqual({ claimed: 3, succeeded: 3, failed: 0, abandoned: 0 });
  });

  it("a single completion that ends while a long poll is out goes alone to its job's complete route", async () => {
    const job = await submit("flush1", "quick");
    const w = startWorker("flush1", { quick: () => ({ ok: 1 }) }, { concurrency: 2, waitMs: 10_000 });
    await until("it succeeded", async () => ((await getJob(job.id)).status === "succeeded" ? true : undefined), 8_000);
    expect(w.rec.calls.filter((c) => c.path.endsWith("/complete")).map((c) => [c.path, c.outcome])).toEqual([[`/v1/jobs/${job.id}/complete`, 200]]);
    w.stop.abort();
    expect(await w.run).toEqual({ claimed: 1, succeeded: 1, failed: 0, abandoned: 0 });
  });

  it("leaves no listeners piling up on the worker's stop signal, poll after poll", async () => {
    for (let i = 0; i < 40; i++) await submit("quiet", "noop");
    const w = startWorker("quiet", { noop: () => null }, { concurrency: 1 });
    await until("all 40 succeeded", async () => ((await listJobs("quiet", "succeeded")).length === 40 ? true : undefined));
    // 40 polls or more went out with this signal. At most the loop's own wait and one poll's
    // relay are on it; fetch's listeners (kept until each request is garbage-collected) are
    // on each poll's own signal.
    expect(getEventListeners(w.stop.signal, "abort").length).toBeLessThanOrEqual(2);
    w.stop.abort();
    expect(await w.run).toMatchObject({ claimed: 40, succeeded: 40 });
  });

  it("a result the poll's schema refuses is sent on its own and fails its job; the worker goes on", async () => {
    const bad = await submit("ride-bad", "bad", { maxAttempts: 3 });
    const w = startWorker("ride-bad", { bad: () => "NUL \u0000 inside", good: () => "fine" }, { concurrency: 1 });
    const refused = await until("bad to fail", async () => {
      const j = await getJob(bad.id);
      return j.status === "failed" ? j : undefined;
    });
    expect(refused).toMatchObject({ attempts: 1, lastError: { code: "invalid_result" } });
    const good = await submit("ride-bad", "good");
    await until("good to succeed", async () => ((await getJob(good.id)).status === "succeeded" ? true : undefined));
    w.stop.abort();
    expect(await w.run).toEqual({ claimed: 2, succeeded: 1, failed: 1, abandoned: 0 });
    // The poll carrying it was refused whole (400), then the completion went alone and was refused itself.
    const polls = w.rec.calls.filter((c) => c.path === "/v1/process-next" && Array.isArray(c.body?.complete));
    expect(polls.find((c) => (c.body!.complete as Array<{ id: string }>)[0]!.id === bad.id)?.outcome).toBe(400);
    expect(w.rec.calls.filter((c) => c.path === `/v1/jobs/${bad.id}/complete`).map((c) => c.outcome)).toEqual([400]);
  });

  it("heartbeats keep a job longer than its lease (the reaper leaves it alone)", async () => {
    const job = await submit("long", "slow");
    let reaped = 0;
    const w = startWorker(
      "long",
      {
        slow: async (_job, ctx) => {
          // Outlive the 2 s lease several times over, running the reaper meanwhile.
          const beats = () => w.rec.calls.filter((c) => c.path.endsWith("/heartbeat") && c.outcome === 200).length;
          await until("4 successful heartbeats", async () => {
            reaped += await reapOnce(setup.env.c);
            return beats() >= 4 ? true : undefined;
          });
          expect(ctx.signal.aborted).toBe(false);
          return "done";
        },
      },
      { leaseSeconds: 2 },
    );
    const done = await until("the job to succeed", async () => {
      const j = await getJob(job.id);
      return j.status === "succeeded" ? j : undefined;
    });
    expect(reaped).toBe(0);
    expect(done.attempts).toBe(1);
    expect(done.result).toBe("done");
    const hb = w.rec.calls.find((c) => c.path.endsWith("/heartbeat"));
    expect(hb?.body).toMatchObject({ leaseSeconds: 2 });
    w.stop.abort();
    expect(await w.run).toMatchObject({ succeeded: 1, abandoned: 0 });
  });

  it("heartbeats go on while a completion waits out refusals longer than the lease: the job runs once", async () => {
    // The database refuses the job's first five completions (serialization failures: 503 to the
    // worker) over ~3 s, against a 1 s lease, while the reaper runs. Before, heartbeats ended with
    // the handler: the lease lapsed, the reaper requeued the job and it ran a second time.
    const fault = await refuseCompletions(setup.env.c.sql, "refused", 5, "40001");
    try {
      const job = await submit("refused", "quick", { maxAttempts: 3 });
      let runs = 0;
      let reaped = 0;
      const w = startWorker("refused", { quick: () => ++runs }, { leaseSeconds: 1 });
      const done = await until("the job to succeed", async () => {
        reaped += await reapOnce(setup.env.c);
        const j = await getJob(job.id);
        return j.status === "succeeded" ? j : undefined;
      }, 20_000);
      expect(await fault.seen()).toBeGreaterThan(5);
      expect({ runs, reaped, attempts: done.attempts, result: done.result }).toEqual({ runs: 1, reaped: 0, attempts: 1, result: 1 });
      w.stop.abort();
      expect(await w.run).toMatchObject({ claimed: 1, succeeded: 1, abandoned: 0 });
      expect(w.errors.some((e) => e instanceof JoblineApiError && e.status === 503)).toBe(true);
    } finally {
      await fault.drop();
    }
  });

  it("with the API unreachable for longer than the lease, a completion is given up once the lease lapsed unconfirmed", async () => {
    const job = await submit("cutoff", "quick");
    const w = startWorker("cutoff", {
      quick: () => {
        w.rec.state.offline = true;
      },
    }, { leaseSeconds: 1 });
    await until("the completion to be given up", () => (w.errors.some((e) => e instanceof Error && /while its lease lasted/.test(e.message)) ? true : undefined));
    w.stop.abort();
    expect(await w.run).toMatchObject({ claimed: 1, succeeded: 0, abandoned: 1 });
    const tries = w.rec.calls.filter((c) => c.path.endsWith("/complete"));
    expect(tries.length).toBeGreaterThan(1);
    expect(tries.every((c) => c.outcome === "TypeError")).toBe(true);
    // The job is left to the reaper, which takes it back for another run.
    w.rec.state.offline = false;
    await until("the reaper to requeue the job", async () => ((await reapOnce(setup.env.c)) > 0 ? true : undefined));
    expect(await getJob(job.id)).toMatchObject({ status: "queued", attempts: 1 });
  });

  it("a cancel request aborts ctx.signal at the next heartbeat; the throw is reported and the job ends cancelled", async () => {
    const job = await submit("cancel", "wait");
    const { w, started, seen } = startAbortWaiter("cancel", 3);
    await started.promise;
    const c = await unwrap(client.POST("/v1/jobs/{id}/cancel", { params: { path: { id: job.id } }, body: {} }));
    expect(c).toMatchObject({ status: "running", cancelRequested: true });
    const done = await until("the job to be cancelled", async () => {
      const j = await getJob(job.id);
      return j.status === "cancelled" ? j : undefined;
    });
    expect(seen.reason).toBeInstanceOf(JobCancelRequestedError);
    expect(done.lastError?.message).toMatch(/cancel requested/);
    w.stop.abort();
    expect(await w.run).toMatchObject({ claimed: 1, failed: 1, abandoned: 0 });
  });

  it("a handler that first reads ctx.signal after a cancel reached its heartbeat finds it aborted, with the reason", async () => {
    const job = await submit("cancel-late", "wait");
    const started = deferred<WorkerJob>();
    const release = deferred<void>();
    const seen: { aborted?: boolean; reason?: unknown } = {};
    const w = startWorker(
      "cancel-late",
      {
        wait: async (j, ctx) => {
          started.resolve(j);
          await release.promise;
          // The signal is made lazily: here, after the abort it must already carry.
          seen.aborted = ctx.signal.aborted;
          seen.reason = ctx.signal.reason;
          return "done anyway";
        },
      },
      { leaseSeconds: 3 },
    );
    await started.promise;
    await unwrap(client.POST("/v1/jobs/{id}/cancel", { params: { path: { id: job.id } }, body: {} }));
    // A heartbeat (every second with a 3 s lease) learns of the request; only then does the handler look.
    await new Promise((r) => setTimeout(r, 2_500));
    release.resolve();
    await until("the handler to finish", async () => (seen.aborted === undefined ? undefined : true));
    expect(seen.aborted).toBe(true);
    expect(seen.reason).toBeInstanceOf(JobCancelRequestedError);
    w.stop.abort();
    await w.run;
  });

  it("the handler's signal aborts at deadlineAt (timeoutSeconds); the attempt is failed with code timeout", async () => {
    const job = await submit("deadline", "wait", { timeoutSeconds: 1, maxAttempts: 1 });
    // A 30 s lease: only the deadline can end this attempt within the test.
    const { w, started, seen } = startAbortWaiter("deadline", 30);
    const claimed = await started.promise;
    // startedAt is not among a worker's fields: read from the job.
    expect(Date.parse(claimed.deadlineAt!) - Date.parse((await getJob(job.id)).startedAt!)).toBe(1000);
    const done = await until("the job to fail", async () => {
      const j = await getJob(job.id);
      return j.status === "failed" ? j : undefined;
    }, 15_000);
    expect(seen.reason).toBeInstanceOf(JobTimeoutError);
    expect(done.lastError?.code).toBe("timeout");
    w.stop.abort();
    expect(await w.run).toMatchObject({ claimed: 1, failed: 1, abandoned: 0 });
  });

  it("a handler that finishes despite a cancel request keeps heartbeating, and its result stands", async () => {
    const started = deferred();
    let reaped = 0;
    const job = await submit("cancel-late", "stubborn");
    const w = startWorker(
      "cancel-late",
      {
        stubborn: async (_j, ctx) => {
          started.resolve();
          await new Promise((r) => ctx.signal.addEventListener("abort", r));
          expect(ctx.signal.reason).toBeInstanceOf(JobCancelRequestedError);
          // Outlive the 2 s lease after the cancel request, running the reaper meanwhile.
          const beats = () => w.rec.calls.filter((c) => c.path.endsWith("/heartbeat") && c.outcome === 200).length;
          const seen = beats();
          await until("4 more heartbeats", async () => {
            reaped += await reapOnce(setup.env.c);
            return beats() >= seen + 4 ? true : undefined;
          });
          return "done anyway";
        },
      },
      { leaseSeconds: 2 },
    );
    await started.promise;
    await unwrap(client.POST("/v1/jobs/{id}/cancel", { params: { path: { id: job.id } }, body: {} }));
    const done = await until("the job to finish", async () => {
      const j = await getJob(job.id);
      return j.status === "running" ? undefined : j;
    });
    expect(done).toMatchObject({ status: "succeeded", result: "done anyway", cancelRequested: true, attempts: 1 });
    expect(reaped).toBe(0);
    w.stop.abort();
    expect(await w.run).toMatchObject({ claimed: 1, succeeded: 1, abandoned: 0 });
  });

  it("a lost lease (409 on heartbeat) aborts ctx.signal and nothing is reported for the job", async () => {
    const job = await submit("lost", "wait");
    const { w, started, seen } = startAbortWaiter("lost", 1);
    const mine = await started.promise;
    w.rec.state.dropHeartbeats = true;
    // The lease runs out; the reaper requeues the job; another worker claims it.
    await until("the reaper to requeue the job", async () => ((await reapOnce(setup.env.c)) > 0 ? true : undefined));
    const other = createJoblineClient({ baseUrl: setup.base, apiKey: setup.worker });
    const claimed = await unwrap(other.POST("/v1/process-next", { body: { queues: ["lost"], workerId: "other", leaseSeconds: 600 } }));
    expect(claimed.jobs.map((j) => j.id)).toEqual([job.id]);
    expect(claimed.jobs[0]!.leaseToken).not.toBe(mine.leaseToken);
    w.rec.state.dropHeartbeats = false;

    await until("the handler to be aborted", () => seen.reason);
    expect(seen.reason).toBeInstanceOf(LeaseLostError);
    expect((seen.reason as LeaseLostError).status).toBe(409);
    w.stop.abort();
    expect(await w.run).toMatchObject({ claimed: 1, succeeded: 0, failed: 0, abandoned: 1 });
    expect(w.rec.calls.filter((c) => c.path.endsWith("/complete") || c.path.endsWith("/fail"))).toEqual([]);
    expect(w.errors.some((e) => e instanceof LeaseLostError)).toBe(true);
    // Still the other worker's job, untouched.
    expect(await getJob(job.id)).toMatchObject({ status: "running", workerId: "other", attempts: 2 });
  });

  it("reports failures: message/code, retryable, retryAfterSeconds, non-Error throws, results the server refuses", async () => {
    const retry = await submit("fails", "flaky", { maxAttempts: 3 });
    const plain = await submit("fails", "strings", { maxAttempts: 1 });
    const bad = await submit("fails", "badResult", { maxAttempts: 3 });
    const w = startWorker(
      "fails",
      {
        flaky: () => {
          throw Object.assign(new Error("upstream 503"), { code: "upstream", retryAfterSeconds: 3600 });
        },
        strings: () => {
          throw "just a string";
        },
        badResult: () => "NUL \u0000 inside",
      },
      { concurrency: 3 },
    );
    const requeued = await until("flaky to be requeued", async () => {
      const j = await getJob(retry.id);
      return j.status === "queued" && j.attempts === 1 ? j : undefined;
    });
    expect(requeued.lastError).toMatchObject({ message: "upstream 503", code: "upstream" });
    // Retried no sooner than it asked (compared with the server's own clock).
    expect(Date.parse(requeued.runAt) - Date.parse(requeued.updatedAt)).toBeGreaterThan(3_500_000);

    const failed = await until("strings to fail", async () => {
      const j = await getJob(plain.id);
      return j.status === "failed" ? j : undefined;
    });
    expect(failed.lastError?.message).toBe("just a string");

    const refused = await until("badResult to fail", async () => {
      const j = await getJob(bad.id);
      return j.status === "failed" ? j : undefined;
    });
    expect(refused.attempts).toBe(1);
    expect(refused.lastError?.code).toBe("invalid_result");
    expect(refused.lastError?.message).toMatch(/result refused/);
    w.stop.abort();
    expect(await w.run).toEqual({ claimed: 3, succeeded: 0, failed: 3, abandoned: 0 });
  });

  it("stops on abort: cuts the long poll, waits for the running handler, then resolves", async () => {
    const gate = deferred();
    const started = deferred();
    const job = await submit("stop", "gated");
    const w = startWorker(
      "stop",
      {
        gated: async () => {
          started.resolve();
          await gate.promise;
          return "finished after stop";
        },
      },
      { concurrency: 2, waitMs: 30_000 },
    );
    await started.promise;
    // With one slot busy, the worker long-polls for one more job.
    const poll = await until("a pending long poll for 1 job", () =>
      w.rec.calls.find((c) => c.path === "/v1/process-next" && c.outcome === "pending" && c.body?.max === 1),
    );
    let settled = false;
    void w.run.finally(() => {
      settled = true;
    });
    w.stop.abort();
    await until("the long poll to be aborted", () => (poll.outcome === "pending" ? undefined : poll.outcome));
    expect(poll.outcome).toBe("AbortError");
    // The poll is gone but the handler still runs: the promise must not have resolved.
    for (let i = 0; i < 20; i++) await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    expect((await getJob(job.id)).status).toBe("running");
    gate.resolve();
    expect(await w.run).toEqual({ claimed: 1, succeeded: 1, failed: 0, abandoned: 0 });
    // Resolved only after the outcome was reported.
    expect(await getJob(job.id)).toMatchObject({ status: "succeeded", result: "finished after stop" });
    const polls = w.rec.calls.filter((c) => c.path === "/v1/process-next");
    expect(polls.every((c) => c.outcome !== "pending")).toBe(true);
    // The cut long poll (waitMs 30 s) must not lease a job to the stopped worker on the server side.
    const after = await submit("stop", "gated");
    await never("a job was leased to the stopped worker's aborted long poll", async () => (await getJob(after.id)).status !== "queued", 1_500);
  });

  it("a stop that cuts a poll whose completions committed resends them in one batch; stats match the database", async () => {
    const n = 8;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await submit("cutpoll", "gated")).id);
    const gate = deferred();
    let started = 0;
    const w = startWorker(
      "cutpoll",
      { gated: async () => { started++; await gate.promise; return "done"; } },
      { concurrency: n, waitMs: 30_000, leaseSeconds: 3 },
    );
    await until("all running", async () => (started === n ? true : undefined));
    gate.resolve();
    // One poll carries the n completions (they commit), then long-polls for more.
    const carrying = await until("the carrying poll", () =>
      w.rec.calls.find((c) => c.path === "/v1/process-next" && Array.isArray(c.body?.complete) && (c.body!.complete as unknown[]).length === n),
    );
    await until("all succeeded in the database", async () => ((await listJobs("cutpoll", "succeeded")).length === n ? true : undefined));
    // Their heartbeats (every second) now find the jobs succeeded: 409, so the SDK sees the leases as lost.
    await until("a 409 heartbeat for each", () => {
      const lost = new Set(w.rec.calls.filter((c) => c.path.endsWith("/heartbeat") && c.outcome === 409).map((c) => c.path.split("/")[3]));
      return ids.every((id) => lost.has(id)) ? true : undefined;
    });
    expect(carrying.outcome).toBe("pending");
    // The stop cuts that poll: its answer never comes. The next two completes meet reset connections (as under load).
    w.rec.state.failCompletes = 2;
    w.stop.abort();
    const stats = await w.run;
    expect(carrying.outcome).toBe("AbortError");
    const succeeded = await listJobs("cutpoll", "succeeded");
    expect(succeeded.length).toBe(n);
    expect(succeeded.every((j) => j.attempts === 1)).toBe(true);
    // Every job the database says succeeded is counted so; none abandoned.
    expect(stats).toEqual({ claimed: n, succeeded: n, failed: 0, abandoned: 0 });
    // Resent together (one batch, retried), never one by one.
    const resends = w.rec.calls.filter((c) => c.path.endsWith("/complete"));
    expect(resends.every((c) => c.path === "/v1/jobs/complete" && (c.body!.items as unknown[]).length === n)).toBe(true);
    expect(resends.map((c) => c.outcome)).toEqual(["TypeError", "TypeError", 200]);
  });

  it("a poll whose completions committed but whose answer was lost (reset): the resends outlast the 409 heartbeats; counted succeeded", async () => {
    const n = 4;
    const ids: string[] = [];
    for (let i = 0; i < n; i++) ids.push((await submit("resetpoll", "gated")).id);
    const gate = deferred();
    const reset = deferred();
    let started = 0;
    const w = startWorker(
      "resetpoll",
      { gated: async () => { started++; await gate.promise; return "done"; } },
      { concurrency: n, waitMs: 30_000, leaseSeconds: 3 },
    );
    w.rec.state.resetCarryingPoll = reset.promise;
    await until("all running", async () => (started === n ? true : undefined));
    gate.resolve();
    await until("all succeeded in the database", async () => ((await listJobs("resetpoll", "succeeded")).length === n ? true : undefined));
    // Their heartbeats now find the jobs succeeded (409): the SDK sees the leases as lost.
    await until("a 409 heartbeat for each", () => {
      const lost = new Set(w.rec.calls.filter((c) => c.path.endsWith("/heartbeat") && c.outcome === 409).map((c) => c.path.split("/")[3]));
      return ids.every((id) => lost.has(id)) ? true : undefined;
    });
    // The carrying poll's answer never comes (reset), and the first resend of each meets a reset too.
    w.rec.state.failCompletes = n;
    w.rec.state.resetCarryingPoll = null;
    reset.resolve();
    await until("each completion resent and answered 200", () =>
      ids.every((id) => w.rec.calls.some((c) => c.path === `/v1/jobs/${id}/complete` && c.outcome === 200)) ? true : undefined,
    );
    w.stop.abort();
    const stats = await w.run;
    expect((await listJobs("resetpoll", "succeeded")).length).toBe(n);
    // Every job the database says succeeded is counted so; none abandoned.
    expect(stats).toEqual({ claimed: n, succeeded: n, failed: 0, abandoned: 0 });
  });

  it("stop() resolves within drainTimeoutMs: a handler that never ends and a completion the API cannot take are left to the reaper", async () => {
    const a = await submit("draintime", "forever");
    const b = await submit("draintime", "gated");
    const gate = deferred();
    let started = 0;
    const forever = deferred();
    const w = startWorker(
      "draintime",
      {
        forever: async () => { started++; await forever.promise; return null; },
        gated: async () => { started++; await gate.promise; return null; },
      },
      { concurrency: 2, leaseSeconds: 60, drainTimeoutMs: 1_500 },
    );
    await until("both running", async () => (started === 2 ? true : undefined));
    w.stop.abort();
    w.rec.state.offline = true;
    gate.resolve();
    const t0 = Date.now();
    const stats = await w.run;
    // Bounded by the drain timeout (1.5 s), not by the 60 s lease a report would otherwise wait out.
    expect(Date.now() - t0).toBeLessThan(20_000);
    expect(stats).toEqual({ claimed: 2, succeeded: 0, failed: 0, abandoned: 2 });
    expect(w.errors.some((e) => String(e).includes("drain timed out"))).toBe(true);
    // Heartbeats ended with the drain: none is sent after it (the network is back meanwhile).
    w.rec.state.offline = false;
    const sent = w.rec.calls.length;
    await new Promise((r) => setTimeout(r, 500));
    forever.resolve();
    await never("a request after the drain timed out", async () => w.rec.calls.length > sent, 1_500).catch((e: unknown) => {
      throw new Error(`${String(e)}: ${JSON.stringify(w.rec.calls.slice(sent).map((c) => c.path))}`);
    });
    for (const j of [a, b]) expect((await getJob(j.id)).status).toBe("running");
  });

  it("rejects (instead of spinning) when the key may not lease jobs", async () => {
    const stop = new AbortController();
    stops.push(stop);
    const clientKey = await setup.env.key("acme", "client");
    const run = runHttpWorker({ baseUrl: setup.base, apiKey: clientKey, queues: ["q"], handlers: { k: () => null }, signal: stop.signal });
    const e = await run.then(
      () => null,
      (err: unknown) => err,
    );
    expect(e).toBeInstanceOf(JoblineApiError);
    expect((e as JoblineApiError).status).toBe(403);
    expect((e as JoblineApiError).code).toBe("forbidden");
  });

  it("the client sends the key; a wrong key is a typed 401 problem", async () => {
    const bad = createJoblineClient({ baseUrl: setup.base, apiKey: "jl_not_a_key" });
    const r = await bad.GET("/v1/jobs", { params: { query: {} } });
    expect(r.response.status).toBe(401);
    expect(r.error).toMatchObject({ status: 401, code: "unauthorized" });
    await expect(unwrap(bad.GET("/v1/jobs"))).rejects.toMatchObject({ status: 401, code: "unauthorized" });
  });
});
