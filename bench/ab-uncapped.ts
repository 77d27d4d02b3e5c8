// A/B of the uncapped bench rows between two checkouts, one JSON line per run: `npx tsx bench/ab-uncapped.ts TREE JOBS`
// (run it alternately for the two trees, each from its own tree, with BENCH_JOBLINE_ROOT=TREE).
// As npm run bench, the in-process row first runs 4,000 untimed jobs, so both trees are measured warm.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
const [tree, jobsArg] = process.argv.slice(2);
const jobs = Number(jobsArg ?? 5000);
const { startEmbeddedPostgres } = await import(`${tree}/src/db/embedded.ts`);
const { migrate } = await import(`${tree}/src/db/migrate.ts`);
const { joblineInProcess, joblineHttp } = await import(`${tree}/bench/jobline.ts`);
const postgres = (await import(`${tree}/node_modules/postgres/src/index.js`)).default;
const dataDir = mkdtempSync(join(tmpdir(), "qc3-cmp-"));
const server = await startEmbeddedPostgres({ dataDir, persistent: false });
let n = 0;
const freshDb = async () => {
  const name = `cmp_${n++}`;
  const admin = postgres(server.url(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  await migrate(server.url(name));
  return server.url(name);
};
const out: Record<string, number> = {};
try {
  await joblineInProcess(await freshDb(), { jobs: 4000, concurrency: 4000, batchSize: 2000 });
  out.inproc = Math.round(await joblineInProcess(await freshDb(), { jobs, concurrency: 4000, batchSize: 2000 }));
  out.http10 = Math.round(await joblineHttp(await freshDb(), { jobs, clients: 16, max: 10, warmup: 1000 }));
  out.http1ack = Math.round(await joblineHttp(await freshDb(), { jobs, clients: 16, max: 1, ack: true, warmup: 1000 }));
  out.http10ack = Math.round(await joblineHttp(await freshDb(), { jobs, clients: 16, max: 10, ack: true, warmup: 1000 }));
  out.http100ack = Math.round(await joblineHttp(await freshDb(), { jobs, clients: 16, max: 100, ack: true, warmup: 1000 }));
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
process.stdout.write(`${JSON.stringify({ tree, jobs, ...out })}\n`);
