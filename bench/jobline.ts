// jobline's side of `npm run bench`: each function gets a fresh, migrated database.
import { type ChildProcess, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import postgres from "postgres";
import { Pool } from "undici";
import { camelColumns } from "../src/db/client.js";
import { testConfig } from "../src/config.js";
import { createContainer } from "../src/container.js";
import { freePort } from "../src/db/embedded.js";
import { jobsRepository, type NewJob } from "../src/repositories/jobs.js";
import { NO_SETTINGS, type QueueSettings } from "../src/repositories/queues.js";
import { toNewJob } from "../src/services/jobs.js";
import { createWorker } from "../src/worker/inProcess.js";
import { LATENCY_WARMUP } from "./competitors.js";
import { withTimeout } from "./lib.js";

const ROOT = join(import.meta.dirname, "..");

export const noopJob = (queue = "bench", groupKey?: string): NewJob => toNewJob("bench", { queue, kind: "noop", payload: {}, groupKey });

/** Untimed set-up: N queued no-op jobs through the same multi-row insert batches use. */
export async function seedJobs(url: string, n: number, queue = "bench", keys = 0) {
  const sql = postgres(url, { max: 1, transform: camelColumns, onnotice: () => {} });
  const repo = jobsRepository(sql);
  for (let i = 0; i < n; i += 5000) {
    const chunk = Array.from({ length: Math.min(5000, n - i) }, (_, k) => noopJob(queue, keys > 0 ? `k${(i + k) % keys}` : undefined));
    await sql.begin((tx) => repo.insertMany(chunk, tx));
  }
  await sql`VACUUM ANALYZE jobs`;
  await sql.end();
}

/** Every job succeeded with exactly one attempt, and the runner saw each id once. */
export async function verifyExactlyOnce(url: string, n: number, seen: Map<string, number>, label: string) {
  const sql = postgres(url, { max: 1, onnotice: () => {} });
  const [r] = await sql<{ ok: number; bad: number }[]>`
    SELECT count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1)::int AS ok,
           count(*) FILTER (WHERE NOT (status = 'succeeded' AND attempts = 1))::int AS bad FROM jobs`;
  await sql.end();
  const dupes = [...seen.values()].filter((v) => v !== 1).length;
  if (r!.ok !== n || r!.bad !== 0 || seen.size !== n || dupes !== 0)
    throw new Error(`${label}: exactly-once violated: db ok=${r!.ok} bad=${r!.bad} seen=${seen.size} dupes=${dupes} of ${n}`);
}

/** The capped-queue rows of npm run bench (bench/capped.ts runs them alone). */
export const CAPPED = {
  concurrency10: { settings: { concurrency: 10 } },
  serial100: { settings: { groupConcurrency: 1 }, keys: 100 },
};

const timed = (t0: number, t1: number, n: number) => n / ((t1 - t0) / 1000);

/** In-process handlers (createWorker): claims and completes in batches through the service layer. */
export async function joblineInProcess(
  url: string,
  o: { jobs: number; concurrency: number; batchSize?: number; capped?: { settings: Partial<QueueSettings>; keys?: number }; fields?: "full" | "worker" },
  /** Called as the worker starts (after seeding); the function it returns, once the last completion is in. */
  onRun?: () => () => void,
) {
  await seedJobs(url, o.jobs, "bench", o.capped?.keys);
  const c = createContainer(testConfig({ JOBLINE_DB_POOL_MAX: 10 }), url);
  if (o.capped) await c.repos.queues.replace("bench", "bench", { ...NO_SETTINGS, ...o.capped.settings });
  await c.notifier.start();
  const seen = new Map<string, number>();
  let first = 0;
  let allRan!: () => void;
  const ran = new Promise<void>((r) => {
    allRan = r;
  });
  const onDone = onRun?.();
  const w = createWorker({
    container: c,
    queues: ["bench"],
    concurrency: o.concurrency,
    ...(o.batchSize ? { batchSize: o.batchSize } : {}),
    // Worker fields unless asked otherwise (FIELDS=full): what a throughput-minded user would pick.
    fields: o.fields ?? (process.env.FIELDS === "full" ? "full" : "worker"),
    handlers: {
      noop: async (job: { id: string }) => {
        if (!first) first = performance.now();
        seen.set(job.id, (seen.get(job.id) ?? 0) + 1);
        if (seen.size === o.jobs) allRan();
        return null;
      },
    },
  });
  // As for the competitors (competitors.ts): nothing polls while the jobs run, and once every
  // handler has run, the service's own transition metric tells when the last completion is in.
  const succeeded = async () =>
    (await c.metrics.transitions.get()).values.find((v) => v.labels.to === "succeeded")?.value ?? 0;
  await withTimeout(ran, 300_000, "jobline in-process: not every job ran");
  const deadline = Date.now() + 60_000;
  while ((await succeeded()) < o.jobs) {
    if (Date.now() > deadline) throw new Error("jobline in-process: completions timed out");
    await new Promise((r) => setTimeout(r, 1));
  }
  const last = performance.now();
  onDone?.();
  await w.stop();
  await c.close();
  await verifyExactlyOnce(url, o.jobs, seen, "jobline in-process");
  return timed(first, last, o.jobs);
}

export interface ApiProcess {
  url: string;
  key: string;
  child: ChildProcess;
  rssMb: () => number;
  stop: () => Promise<void>;
}

/** `jobline serve` as a child process, so API and clients do not share an event loop. */
export async function startApi(databaseUrl: string): Promise<ApiProcess> {
  const port = await freePort();
  const key = `bench_${randomBytes(16).toString("hex")}`;
  // API_NODE_ARGS (space-separated) lets a probe profile the API, e.g. "--cpu-prof --cpu-prof-dir=/tmp/p".
  const nodeArgs = process.env.API_NODE_ARGS?.split(" ").filter(Boolean) ?? [];
  // BENCH_JOBLINE_ROOT: another checkout's API (an A/B comparison against this one's bench).
  const root = process.env.BENCH_JOBLINE_ROOT ?? ROOT;
  const child = spawn(process.execPath, [...nodeArgs, join(root, "bin", "jobline.js"), "serve"], {
    env: { ...process.env, DATABASE_URL: databaseUrl, PORT: String(port), JOBLINE_BOOTSTRAP_KEY: key, LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    const ok = await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false);
    if (ok) break;
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error("jobline serve did not become ready");
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    key,
    child,
    rssMb: () => {
      const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
      return m ? Number(m[1]) / 1024 : Number.NaN;
    },
    stop: async () => {
      await closeClients(url);
      await new Promise<void>((resolve) => {
        if (child.exitCode !== null) return resolve();
        const t = setTimeout(() => child.kill("SIGKILL"), 5000);
        child.once("exit", () => {
          clearTimeout(t);
          resolve();
        });
        child.kill("SIGTERM");
      });
    },
  };
}

// The clients share the API's two cores in this benchmark, so they use the cheapest client
// at hand: undici's Pool.request (keep-alive, one connection per client). Against node:http
// with a keep-alive agent it saved the clients ~25 % of their CPU per job and raised HTTP
// max 1 by ~8 % (bench/http-cpu.ts, alternating runs); fetch costs more than either.
const pools = new Map<string, Pool>();

export async function post<T>(api: { url: string; key: string }, path: string, body: unknown): Promise<{ status: number; body: T }> {
  let pool = pools.get(api.url);
  if (!pool) {
    pool = new Pool(api.url, { connections: 64 });
    pools.set(api.url, pool);
  }
  const r = await pool.request({
    path,
    method: "POST",
    body: JSON.stringify(body),
    headers: { authorization: `Bearer ${api.key}`, "content-type": "application/json" },
  });
  return { status: r.statusCode, body: (await r.body.json()) as T };
}

/** Closes the clients' connections to one API (before it stops, so none is left half-open). */
async function closeClients(url: string) {
  const pool = pools.get(url);
  pools.delete(url);
  await pool?.destroy();
}

interface Claimed {
  id: string;
  leaseToken: string;
}

/**
 * FIELDS env, for A/Bs: `worker` makes every HTTP run's clients ask process-next for the worker's
 * fields (as a run's `fields: "worker"` does); `full` gives in-process handlers the full job.
 */
const LEAN = process.env.FIELDS === "worker";

/**
 * 16 polling clients over HTTP: process-next with `max`, then complete (batch ack when max > 1);
 * with `ack`, each poll instead carries the completions of the jobs the previous one leased.
 * `warmup` jobs first go through the same API process and clients, untimed: a long-running API
 * has compiled its hot paths, as the competitors' in-process code has by its measured runs.
 * `onApi` sees the API once it is ready; the function it may return runs when the clients are done.
 */
export async function joblineHttp(
  url: string,
  o: { jobs: number; clients: number; max: number; ack?: boolean; warmup?: number; fields?: "worker" },
  onApi?: (a: ApiProcess) => (() => void) | undefined,
) {
  const warmup = o.warmup ?? 0;
  await seedJobs(url, warmup || o.jobs);
  const api = await startApi(url);
  const seen = new Map<string, number>();
  let measured: { first: number; last: number };
  try {
    if (warmup) {
      await drainOverHttp(api, o, seen);
      await seedJobs(url, o.jobs);
    }
    const onDone = onApi?.(api);
    measured = await drainOverHttp(api, o, seen);
    onDone?.();
  } finally {
    await api.stop();
  }
  await verifyExactlyOnce(url, warmup + o.jobs, seen, `jobline http max ${o.max}`);
  return timed(measured.first, measured.last, o.jobs);
}

/** The clients poll until the queue is empty; returns the first lease's and the last completion's times. */
async function drainOverHttp(api: ApiProcess, o: { clients: number; max: number; ack?: boolean; fields?: "worker" }, seen: Map<string, number>) {
  let first = 0;
  let last = 0;
  const acknowledge = async (jobs: Claimed[]) => {
    if (o.max === 1) {
      const j = jobs[0]!;
      const c = await post(api, `/v1/jobs/${j.id}/complete`, { leaseToken: j.leaseToken });
      if (c.status !== 200) throw new Error(`complete ${c.status}`);
    } else {
      const c = await post<{ items: { status: number }[] }>(api, "/v1/jobs/complete", {
        items: jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken })),
      });
      if (c.status !== 200 || c.body.items.some((x) => x.status !== 200)) throw new Error(`batch complete ${c.status}`);
    }
  };
  await withTimeout(
    Promise.all(
      Array.from({ length: o.clients }, async (_, i) => {
        let owed: Claimed[] = [];
        for (;;) {
          const complete = owed.map((j) => ({ id: j.id, leaseToken: j.leaseToken }));
          const r = await post<{ jobs: Claimed[]; completed?: { status: number }[] }>(api, "/v1/process-next", {
            queues: ["bench"],
            workerId: `c${i}`,
            max: o.max,
            ...(o.ack ? { complete } : {}),
            ...(LEAN || o.fields === "worker" ? { fields: "worker" } : {}),
          });
          if (r.status !== 200) throw new Error(`process-next ${r.status}`);
          if (o.ack && (r.body.completed?.length !== complete.length || r.body.completed.some((x) => x.status !== 200)))
            throw new Error("process-next: a completion was not acknowledged");
          if (owed.length > 0) last = performance.now();
          owed = [];
          if (r.body.jobs.length === 0) return;
          if (!first) first = performance.now();
          for (const j of r.body.jobs) seen.set(j.id, (seen.get(j.id) ?? 0) + 1);
          if (o.ack) owed = r.body.jobs;
          else {
            await acknowledge(r.body.jobs);
            last = performance.now();
          }
        }
      }),
    ),
    300_000,
    "jobline http",
  );
  return { first, last };
}

/** The ceiling: jobline's own claim + complete statements in a bare postgres.js loop, same pool size. */
export async function ceiling(url: string, o: { jobs: number; batch: number; pool: number }) {
  await seedJobs(url, o.jobs);
  const sql = postgres(url, { max: o.pool, transform: camelColumns, onnotice: () => {} });
  const repo = jobsRepository(sql);
  const seen = new Map<string, number>();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: o.pool }, async (_, w) => {
      for (;;) {
        const rows = await repo.claimNext({ queues: ["bench"], tenant: null, workerId: `w${w}`, leaseSeconds: 60, max: o.batch });
        if (rows.length === 0) return;
        for (const r of rows) seen.set(r.id, (seen.get(r.id) ?? 0) + 1);
        if (o.batch === 1) await repo.completeIfLeased(rows[0]!.id, rows[0]!.leaseToken!, null, null);
        else await repo.completeManyIfLeased(rows.map((r) => ({ id: r.id, leaseToken: r.leaseToken!, result: null })), null);
      }
    }),
  );
  const t1 = performance.now();
  await sql.end();
  await verifyExactlyOnce(url, o.jobs, seen, `ceiling batch ${o.batch}`);
  return timed(t0, t1, o.jobs);
}

/** Single submits over HTTP from `clients` concurrent clients; `warmup` of them first, untimed, through the same API process. */
export async function httpSubmit(url: string, o: { jobs: number; clients: number; warmup?: number }) {
  const api = await startApi(url);
  const submit = async (n: number) => {
    let next = 0;
    await Promise.all(
      Array.from({ length: o.clients }, async () => {
        while (next++ < n) {
          const r = await post(api, "/v1/jobs", { queue: "bench", kind: "noop", payload: { n: next } });
          if (r.status !== 201) throw new Error(`submit ${r.status}`);
        }
      }),
    );
  };
  try {
    if (o.warmup) await submit(o.warmup);
    const t0 = performance.now();
    await submit(o.jobs);
    return timed(t0, performance.now(), o.jobs);
  } finally {
    await api.stop();
  }
}

/** One POST /v1/batches of `size` jobs, after an untimed one of `warmup` jobs through the same API process; returns milliseconds. */
export async function batchSubmit(url: string, o: { size: number; warmup?: number }) {
  const api = await startApi(url);
  const submit = async (size: number) => {
    const jobs = Array.from({ length: size }, (_, i) => ({ queue: "bench", kind: "noop", payload: { i } }));
    const t0 = performance.now();
    const r = await post<{ total?: number }>(api, "/v1/batches", { jobs });
    const ms = performance.now() - t0;
    if (r.status !== 201) throw new Error(`batch submit ${r.status}`);
    return ms;
  };
  try {
    if (o.warmup) await submit(o.warmup);
    return await submit(o.size);
  } finally {
    await api.stop();
  }
}

/** Submit → start for a waiting HTTP long poll, one job at a time. */
export async function joblineLatency(url: string, o: { samples: number }) {
  const api = await startApi(url);
  const out: number[] = [];
  try {
    for (let i = 0; i < LATENCY_WARMUP + o.samples; i++) {
      const poll = post<{ jobs: Claimed[] }>(api, "/v1/process-next", { queues: ["lat"], workerId: "lat", waitMs: 10_000 });
      // Let the poll reach its wait before submitting.
      await new Promise((r) => setTimeout(r, 5));
      const t0 = performance.now();
      await post(api, "/v1/jobs", { queue: "lat", kind: "noop" });
      const r = await poll;
      if (i >= LATENCY_WARMUP) out.push(performance.now() - t0);
      const j = r.body.jobs[0];
      if (!j) throw new Error("long poll returned empty");
      await post(api, `/v1/jobs/${j.id}/complete`, { leaseToken: j.leaseToken });
    }
  } finally {
    await api.stop();
  }
  return out;
}

/**
 * A database with `queued` jobs waiting and `finished` succeeded rows present, and a
 * sampler: each sample is one single claim (completed at once, so the depth stays put).
 */
export async function prepareClaimLatency(url: string, o: { queued: number; finished: number }) {
  const sql = postgres(url, { max: 1, transform: camelColumns, onnotice: () => {} });
  const fill = async (n: number, status: "queued" | "succeeded") => {
    for (let i = 0; i < n; i += 200_000) {
      const k = Math.min(200_000, n - i);
      await sql.unsafe(
        status === "queued"
          ? `INSERT INTO jobs (tenant, queue, kind, payload, fair_tag) SELECT 'bench', 'bench', 'noop', '{}', g FROM generate_series(${i + 1}, ${i + k}) g`
          : `INSERT INTO jobs (tenant, queue, kind, payload, status, attempts, finished_at, lease_token, started_at)
             SELECT 'bench', 'bench', 'noop', '{}', 'succeeded', 1, now(), gen_random_uuid(), now() FROM generate_series(1, ${k})`,
      );
    }
  };
  await fill(o.queued, "queued");
  await fill(o.finished, "succeeded");
  await sql`VACUUM ANALYZE jobs`;
  const repo = jobsRepository(sql);
  return {
    async sample(n: number): Promise<number[]> {
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        const rows = await repo.claimNext({ queues: ["bench"], tenant: null, workerId: "lat", leaseSeconds: 60, max: 1 });
        out.push(performance.now() - t0);
        const r = rows[0]!;
        await repo.completeIfLeased(r.id, r.leaseToken!, null, null);
      }
      return out;
    },
    close: () => sql.end(),
  };
}

/**
 * Median single-claim latency of each setup, sampled in interleaved blocks: the
 * machine's speed drifts over minutes, and sampling one setup after another
 * showed that drift as a difference between setups.
 */
export async function claimLatencies<K extends string>(setups: Record<K, Awaited<ReturnType<typeof prepareClaimLatency>>>, o = { samples: 1000, block: 50 }) {
  const samples = Object.fromEntries(Object.keys(setups).map((k) => [k, [] as number[]])) as Record<K, number[]>;
  for (let done = 0; done < o.samples; done += o.block)
    for (const k of Object.keys(setups) as K[]) samples[k].push(...(await setups[k].sample(Math.min(o.block, o.samples - done))));
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  return Object.fromEntries(Object.entries(samples).map(([k, xs]) => [k, median(xs as number[])])) as Record<K, number>;
}
