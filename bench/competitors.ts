// The competitor half of `npm run bench`: graphile-worker and pg-boss on a fresh database each.
// Jobs are inserted first (untimed); throughput is timed from the first handler start until
// every job's completion is committed in the database (the same end point jobline's
// in-process run uses), then exactly-once is verified both in memory and in the database.
import { Logger, makeWorkerUtils, run, type Runner, type WorkerUtils } from "graphile-worker";
import { PgBoss } from "pg-boss";
import postgres from "postgres";
import { percentile, progress, sleep, withTimeout } from "./lib.js";

const TIMEOUT_MS = 120_000;

export interface ThroughputResult {
  jobsPerSec: number;
  /** Handler executions (duplicates included). */
  ran: number;
  /** Executions beyond the first, summed over jobs; always 0 when the function returns. */
  duplicates: number;
  /** Seconds from the first handler start until all completions were committed. */
  seconds: number;
}

type Cleanup = () => Promise<unknown>;

/** Runs `body` bounded by TIMEOUT_MS; cleanups it registers always run (in reverse), even on timeout. */
async function bounded<T>(label: string, body: (defer: (fn: Cleanup) => void) => Promise<T>): Promise<T> {
  const cleanups: Cleanup[] = [];
  const p = body((fn) => cleanups.push(fn));
  p.catch(() => {}); // after a timeout the body may still fail while being torn down
  try {
    return await withTimeout(p, TIMEOUT_MS, label);
  } finally {
    for (const fn of cleanups.reverse()) {
      await withTimeout(fn(), 15_000, `${label} cleanup`).catch((e) => progress(`${label}: cleanup failed: ${e}`));
    }
  }
}

/** Counts executions per job id and resolves `allSeen` once every one of `n` jobs has run. */
function tracker(n: number) {
  const seen = new Map<string, number>();
  let ran = 0;
  let first = 0;
  let resolve!: () => void;
  const allSeen = new Promise<void>((r) => {
    resolve = r;
  });
  return {
    seen,
    allSeen,
    get first() {
      return first;
    },
    get ran() {
      return ran;
    },
    start() {
      if (!first) first = performance.now();
    },
    record(id: string) {
      ran++;
      seen.set(id, (seen.get(id) ?? 0) + 1);
      if (seen.size === n) resolve();
    },
  };
}

/** Polls `count` until it returns 0; only called once all handlers have run, so it does not load the DB mid-run. */
async function drained(count: () => Promise<number>): Promise<number> {
  while ((await count()) > 0) await sleep(1);
  return performance.now();
}

function finish(label: string, n: number, t: ReturnType<typeof tracker>, end: number, dbOk: number, dbBad: number): ThroughputResult {
  const duplicates = t.ran - t.seen.size;
  if (t.seen.size !== n || duplicates !== 0 || dbOk !== n || dbBad !== 0) {
    throw new Error(
      `${label}: EXACTLY-ONCE VIOLATED: ${t.seen.size}/${n} distinct jobs ran, ${t.ran} executions (${duplicates} duplicates), db ok=${dbOk} bad=${dbBad}`,
    );
  }
  const seconds = (end - t.first) / 1000;
  return { jobsPerSec: n / seconds, ran: t.ran, duplicates, seconds };
}

/** graphile-worker's log lines, warnings and errors only, to stderr. */
const quietLogger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") progress(`graphile-worker ${level}: ${message}`);
});

/** runner.stop() resolves before graphile-worker's own pool has finished closing (`pgPool.end()` is not awaited). */
async function stopRunner(runner: Runner) {
  await runner.stop();
  await sleep(200);
}

async function graphileSeed(url: string, jobs: number) {
  const utils: WorkerUtils = await makeWorkerUtils({ connectionString: url, logger: quietLogger });
  try {
    await utils.migrate();
    for (let i = 0; i < jobs; i += 5000) {
      const k = Math.min(5000, jobs - i);
      await utils.addJobs(Array.from({ length: k }, () => ({ identifier: "noop", payload: {} })));
    }
  } finally {
    await utils.release();
  }
}

/**
 * graphile-worker 0.18 `run()` with `concurrency` (default 10). `tuned` adds
 * `localQueue: { size: 50 }` and `completeJobBatchDelay: 0`.
 */
export async function graphileWorkerThroughput(
  url: string,
  o: { jobs: number; concurrency?: number; tuned?: boolean },
): Promise<ThroughputResult> {
  const label = `graphile-worker${o.tuned ? " (tuned)" : ""}`;
  return bounded(label, async (defer) => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    defer(() => sql.end());
    await graphileSeed(url, o.jobs);
    await sql`VACUUM ANALYZE graphile_worker._private_jobs`;

    const t = tracker(o.jobs);
    const runner: Runner = await run({
      connectionString: url,
      concurrency: o.concurrency ?? 10,
      noHandleSignals: true,
      logger: quietLogger,
      crontab: "",
      taskList: {
        noop: async (_payload, helpers) => {
          t.start();
          t.record(helpers.job.id);
        },
      },
      preset: o.tuned ? { worker: { localQueue: { size: 50 }, completeJobBatchDelay: 0 } } : undefined,
    });
    runner.promise.catch((e) => progress(`${label}: runner failed: ${e}`));
    let stopped = false;
    defer(async () => {
      if (!stopped) await stopRunner(runner);
    });

    await t.allSeen;
    // Completed jobs are deleted; failed ones would stay (with a future run_at) and never drain.
    const end = await drained(async () => (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM graphile_worker._private_jobs`)[0]!.n);
    stopped = true;
    await stopRunner(runner); // also lets any straggling duplicate surface before counting
    return finish(label, o.jobs, t, end, o.jobs, 0);
  });
}

/**
 * pg-boss 12 `work()` with `localConcurrency` = concurrency (default 10), `batchSize: 10`,
 * `burstWhenBatchFull: true`; supervise and monitor intervals 1 s.
 */
export async function pgBossThroughput(url: string, o: { jobs: number; concurrency?: number }): Promise<ThroughputResult> {
  const label = "pg-boss";
  const queue = "bench";
  return bounded(label, async (defer) => {
    const sql = postgres(url, { max: 1, onnotice: () => {} });
    defer(() => sql.end());
    const boss = new PgBoss({ connectionString: url, superviseIntervalSeconds: 1, monitorIntervalSeconds: 1 });
    boss.on("error", (e) => progress(`${label} error: ${e}`));
    await boss.start();
    defer(() => boss.stop({ graceful: true, timeout: 10_000 }));
    await boss.createQueue(queue);
    for (let i = 0; i < o.jobs; i += 5000) {
      const k = Math.min(5000, o.jobs - i);
      await boss.insert(queue, Array.from({ length: k }, () => ({ data: {} })));
    }
    await sql`VACUUM ANALYZE pgboss.job`;

    const t = tracker(o.jobs);
    await boss.work(queue, { localConcurrency: o.concurrency ?? 10, batchSize: 10, burstWhenBatchFull: true }, async (jobs) => {
      t.start();
      for (const j of jobs) t.record(j.id);
    });

    await t.allSeen;
    const end = await drained(
      async () =>
        (await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM pgboss.job WHERE name = ${queue} AND state <> 'completed'`)[0]!.n,
    );
    await boss.offWork(queue, { wait: true });
    await sleep(50);
    const [r] = await sql<{ ok: number; bad: number }[]>`
      SELECT count(*) FILTER (WHERE state = 'completed' AND retry_count = 0)::int AS ok,
             count(*) FILTER (WHERE NOT (state = 'completed' AND retry_count = 0))::int AS bad
      FROM pgboss.job WHERE name = ${queue}`;
    return finish(label, o.jobs, t, end, r!.ok, r!.bad);
  });
}

/**
 * Submit → task-start latency for an idle, LISTENing graphile-worker (default options):
 * one job at a time via `addJob`, `samples` times (default 200). Milliseconds.
 */
/** Samples taken and dropped before a latency measurement, for every system alike. */
export const LATENCY_WARMUP = 5;

export async function graphileWorkerLatency(url: string, o: { samples?: number } = {}): Promise<{ p50: number; p99: number; samples: number[] }> {
  const label = "graphile-worker latency";
  return bounded(label, async (defer) => {
    const utils = await makeWorkerUtils({ connectionString: url, logger: quietLogger });
    defer(async () => {
      await utils.release();
      await sleep(100);
    });
    await utils.migrate();
    let onStart: ((t: number) => void) | undefined;
    const runner = await run({
      connectionString: url,
      concurrency: 10,
      noHandleSignals: true,
      logger: quietLogger,
      crontab: "",
      taskList: {
        noop: async () => {
          onStart?.(performance.now());
        },
      },
    });
    runner.promise.catch((e) => progress(`${label}: runner failed: ${e}`));
    defer(() => stopRunner(runner));
    await sleep(500); // let the pool connect and LISTEN

    const out: number[] = [];
    // The first LATENCY_WARMUP samples (cold statements and connections) are not counted.
    for (let i = 0; i < LATENCY_WARMUP + (o.samples ?? 200); i++) {
      const started = new Promise<number>((r) => {
        onStart = r;
      });
      const t0 = performance.now();
      await utils.addJob("noop", {});
      const ms = (await started) - t0;
      if (i >= LATENCY_WARMUP) out.push(ms);
      await sleep(5); // let the worker complete it and go back to waiting
    }
    return { p50: percentile(out, 50), p99: percentile(out, 99), samples: out };
  });
}
