// CPU per job at a steady moderate load (issue 31 §3): a producer offers `rate` jobs/s, one
// submit per job, to workers that mostly wait. jobline: `jobline serve`, one POST /v1/jobs per job,
// `workers` HTTP long polls (process-next max 10, waitMs 1000, completions carried by the next
// poll). graphile-worker: addJob per job, its own runner (concurrency = workers). CPU is read from
// /proc over a window after a warm-up: the API process, this process (producer and workers) and
// every PostgreSQL process, divided by the jobs submitted in the window.
// Standalone: `npx tsx bench/moderate.ts [rounds]` (RATE, WINDOW_S, WORKERS env).
import { Logger, makeWorkerUtils, run } from "graphile-worker";
import postgres from "postgres";
import { migrate } from "../src/db/migrate.js";
import { type CpuPerJob, cpuWindow } from "./budget.js";
import { Pool } from "undici";
import { startApi } from "./jobline.js";
import { sleep, startBenchPostgres, stats } from "./lib.js";

export interface ModerateOptions {
  rate: number;
  seconds: number;
  warmupSeconds: number;
  workers: number;
}
export interface ModerateResult {
  cpu: CpuPerJob;
  /** All parts together, µs per job. */
  total: number;
  jobs: number;
  /** Jobs finished in the window (at a steady offer, about `jobs`). */
  finished: number;
  /** Jobs submitted but not yet finished at the end of the window. */
  backlog: number;
  /** jobline only: the API's poll statements in the window (jobline_poll_statements_total), per job, by statement and outcome. */
  statementsPerJob?: Record<string, number>;
}

const defaults: ModerateOptions = { rate: 400, seconds: 10, warmupSeconds: 3, workers: 32 };

/** Calls `submit` at `rate` per second (open loop: a slow answer does not slow the offer) until stopped. */
function pacedProducer(rate: number, submit: () => Promise<void>) {
  let sent = 0;
  let answered = 0;
  let failed: unknown = null;
  const t0 = performance.now();
  const timer = setInterval(() => {
    const due = Math.floor(((performance.now() - t0) / 1000) * rate);
    for (; sent < due; sent++) submit().then(
        () => answered++,
        (e: unknown) => (failed ??= e),
      );
  }, 5);
  return {
    /** Submits answered so far. */
    get sent() {
      if (failed) throw failed;
      return answered;
    },
    stop: () => clearInterval(timer),
  };
}

/** jobline_poll_statements_total of an API, by "statement outcome". */
async function pollStatements(url: string) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out: Record<string, number> = {};
  for (const m of text.matchAll(/^jobline_poll_statements_total\{statement="(\w+)",outcome="(\w+)"\} (\d+)/gm)) out[`${m[1]} ${m[2]}`] = Number(m[3]);
  return out;
}

/** Measures a window of `seconds` after `warmupSeconds`, with `finished()` counting jobs done so far. */
async function window(o: ModerateOptions, producer: { readonly sent: number }, finished: () => number, serverPid?: number) {
  await sleep(o.warmupSeconds * 1000);
  const sent0 = producer.sent;
  const done0 = finished();
  const end = cpuWindow(serverPid);
  await sleep(o.seconds * 1000);
  const done = finished() - done0;
  // Per job finished: at a steady offer that is the jobs submitted; when a system falls behind, the work it did.
  const cpu = end(done);
  return { cpu, total: cpu.server + cpu.postgres + cpu.clients, jobs: producer.sent - sent0, finished: done, backlog: producer.sent - finished() };
}

/** POSTs through its own keep-alive pool: workers' polls must not queue behind the producer's submits. */
function poster(api: { url: string; key: string }, connections: number) {
  const pool = new Pool(api.url, { connections });
  const post = async <T>(path: string, body: unknown) => {
    const r = await pool.request({
      path,
      method: "POST",
      body: JSON.stringify(body),
      headers: { authorization: `Bearer ${api.key}`, "content-type": "application/json" },
    });
    return { status: r.statusCode, body: (await r.body.json()) as T };
  };
  return { post, close: () => pool.destroy() };
}

export async function joblineModerate(url: string, opts: Partial<ModerateOptions> = {}): Promise<ModerateResult> {
  const o = { ...defaults, ...opts };
  const api = await startApi(url);
  const polls = poster(api, o.workers);
  const submits = poster(api, 64);
  let stopping = false;
  let done = 0;
  const workers = Array.from({ length: o.workers }, async (_, i) => {
    let owed: { id: string; leaseToken: string }[] = [];
    while (!stopping || owed.length > 0) {
      const r = await polls.post<{ jobs: typeof owed }>("/v1/process-next", {
        queues: ["bench"],
        workerId: `w${i}`,
        max: 10,
        waitMs: stopping ? 0 : 1000,
        complete: owed,
      });
      if (r.status !== 200) throw new Error(`process-next ${r.status}`);
      done += owed.length;
      owed = r.body.jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken }));
    }
  });
  const producer = pacedProducer(o.rate, async () => {
    const r = await submits.post("/v1/jobs", { queue: "bench", kind: "noop", payload: {} });
    if (r.status !== 201) throw new Error(`submit ${r.status}`);
  });
  try {
    const s0 = await pollStatements(api.url);
    const r = await window(o, producer, () => done, api.child.pid);
    const s1 = await pollStatements(api.url);
    const statementsPerJob = Object.fromEntries(Object.entries(s1).map(([k, v]) => [k, (v - (s0[k] ?? 0)) / r.finished]));
    return { ...r, statementsPerJob };
  } finally {
    producer.stop();
    stopping = true;
    await Promise.all(workers);
    await Promise.all([polls.close(), submits.close()]);
    await api.stop();
  }
}

const quiet = new Logger(() => () => {});

export async function graphileWorkerModerate(url: string, opts: Partial<ModerateOptions> = {}): Promise<ModerateResult> {
  const o = { ...defaults, ...opts };
  const utils = await makeWorkerUtils({ connectionString: url, logger: quiet });
  await utils.migrate();
  let done = 0;
  const runner = await run({
    connectionString: url,
    concurrency: o.workers,
    noHandleSignals: true,
    logger: quiet,
    crontab: "",
    taskList: {
      noop: async () => {
        done++;
      },
    },
  });
  const producer = pacedProducer(o.rate, async () => {
    await utils.addJob("noop", {});
  });
  try {
    return await window(o, producer, () => done);
  } finally {
    producer.stop();
    await runner.stop();
    await utils.release();
    await sleep(200);
  }
}

/** One round: each system on a fresh database of `server`. */
export async function moderateRound(fresh: (migrated: boolean) => Promise<string>, opts: Partial<ModerateOptions> = {}) {
  const jobline = await joblineModerate(await fresh(true), opts);
  const graphileWorker = await graphileWorkerModerate(await fresh(false), opts);
  return { jobline, graphileWorker, ratio: jobline.total / graphileWorker.total };
}

export const describeModerate = (name: string, r: ModerateResult) =>
  `${name}: ${r.total.toFixed(0)} µs CPU per job (server ${r.cpu.server.toFixed(0)}, clients ${r.cpu.clients.toFixed(0)}, PostgreSQL ${r.cpu.postgres.toFixed(0)}), ${r.jobs} submitted, ${r.finished} finished, backlog ${r.backlog}${
    r.statementsPerJob ? `; poll statements per job: ${Object.entries(r.statementsPerJob).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(", ")}` : ""
  }`;

if (import.meta.url === `file://${process.argv[1]}`) {
  const rounds = Number(process.argv[2] ?? 3);
  const env = (k: string) => (process.env[k] ? Number(process.env[k]) : undefined);
  const opts: Partial<ModerateOptions> = Object.fromEntries(
    Object.entries({ rate: env("RATE"), seconds: env("WINDOW_S"), workers: env("WORKERS") }).filter(([, v]) => v !== undefined),
  );
  const s = await startBenchPostgres();
  let n = 0;
  const fresh = async (migrated: boolean) => {
    const name = `m${n++}`;
    const admin = postgres(s.url(), { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE ${name}`);
    await admin.end();
    if (migrated) await migrate(s.url(name));
    return s.url(name);
  };
  try {
    const ratios: number[] = [];
    for (let i = 0; i < rounds; i++) {
      const r = await moderateRound(fresh, opts);
      console.log(describeModerate(`round ${i + 1} jobline`, r.jobline));
      console.log(describeModerate(`round ${i + 1} graphile-worker`, r.graphileWorker));
      console.log(`round ${i + 1} ratio jobline / graphile-worker: ${r.ratio.toFixed(2)}`);
      ratios.push(r.ratio);
    }
    const st = stats(ratios);
    console.log(`ratio min ${st.min.toFixed(2)} median ${st.median.toFixed(2)} max ${st.max.toFixed(2)}`);
  } finally {
    await s.stop();
  }
}
