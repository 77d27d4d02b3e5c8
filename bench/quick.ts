// Ad-hoc probe while tuning: `npx tsx bench/quick.ts MODE N v1 [v2…]`, each v run in order on one server.
//   inproc v = worker concurrency (BATCH env: batch size); http / httpack v = max (httpack completes
//   with the next poll; CLIENTS env); ceil v = rows per statement; submit v = job count;
//   gw v = 1 tuned graphile-worker, 0 defaults; pair v = worker concurrency: jobline in-process, then
//   tuned graphile-worker, and their ratio (the machine's drift shows as a spread of ratios);
//   bare v = max: bench/budget.ts's bare HTTP exchange paced to RATE env jobs/s;
//   sdk v = concurrency of each of 16 SDK runHttpWorker loops (the bench's "SDK" row is sdk 100 against httpack 100).
// WARMUP env (jobs): http / httpack warm each run's API process first; pair first runs each system
// once untimed. Default 0 for http, N / 5 for pair (as npm run bench does).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { graphileWorkerThroughput } from "./competitors.js";
import { bareExchange } from "./budget.js";
import { ceiling, httpSubmit, joblineHttp, joblineInProcess } from "./jobline.js";
import { sdkWorkerThroughput } from "./sdk.js";

// BENCH_PG_URL: an already running server (to watch pg_stat_* meanwhile); else a throw-away embedded one.
const given = process.env.BENCH_PG_URL;
const s = given
  ? { url: (db = "postgres") => given.replace(/\/[^/]*$/, `/${db}`), stop: async () => {} }
  : await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "jlb-")), persistent: false });
let n = 0;
const fresh = async (migrated = true) => {
  const name = `b${n++}_${process.pid}`;
  const admin = postgres(s.url(), { max: 1 });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  if (migrated) await migrate(s.url(name));
  return s.url(name);
};
const [which = "inproc", N = "20000", ...rest] = process.argv.slice(2);
const B = Number(process.env.BATCH ?? 25);
const C = Number(process.env.CLIENTS ?? 16);
let pairWarmed = false;
for (const v of rest.map(Number)) {
  const jobs = Number(N);
  if (which === "inproc") console.log("inproc conc", v, "batch", B, Math.round(await joblineInProcess(await fresh(), { jobs, concurrency: v, batchSize: B })));
  if (which === "http" || which === "httpack")
    console.log(which, "max", v, "clients", C, Math.round(await joblineHttp(await fresh(), { jobs, clients: C, max: v, ack: which === "httpack", warmup: Number(process.env.WARMUP ?? 0) })));
  if (which === "sdk")
    console.log("sdk runHttpWorker x16 concurrency", v, Math.round(await sdkWorkerThroughput(await fresh(), { jobs, concurrency: v, warmup: Number(process.env.WARMUP ?? 0) })));
  if (which === "submit") console.log("http submit clients", C, Math.round(await httpSubmit(await fresh(), { jobs: v, clients: C })));
  if (which === "gw")
    console.log("graphile-worker", v ? "tuned" : "defaults", Math.round((await graphileWorkerThroughput(await fresh(false), { jobs, concurrency: 10, tuned: v === 1 })).jobsPerSec));
  if (which === "pair") {
    const warm = Number(process.env.WARMUP ?? Math.round(jobs / 5));
    if (!pairWarmed && warm > 0) {
      await joblineInProcess(await fresh(), { jobs: warm, concurrency: v, batchSize: B });
      await graphileWorkerThroughput(await fresh(false), { jobs: warm, concurrency: 10, tuned: true });
    }
    pairWarmed = true;
    const jl = await joblineInProcess(await fresh(), { jobs, concurrency: v, batchSize: B });
    const gw = (await graphileWorkerThroughput(await fresh(false), { jobs, concurrency: 10, tuned: true })).jobsPerSec;
    console.log("in-process", Math.round(jl), "graphile-worker tuned", Math.round(gw), "ratio", (jl / gw).toFixed(2));
  }
  if (which === "bare") console.log("bare exchange max", v, await bareExchange({ max: v, rate: Number(process.env.RATE ?? 20_000), jobs }));
  if (which === "ceil") console.log("ceiling batch", v, Math.round(await ceiling(await fresh(), { jobs, batch: v, pool: 10 })));
}
await s.stop();
