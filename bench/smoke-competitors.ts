// Quick check of the competitor benchmarks: npx tsx bench/smoke-competitors.ts [jobs=2000]
import { graphileWorkerLatency, graphileWorkerThroughput, pgBossThroughput } from "./competitors.js";
import { createDatabase, progress, startBenchPostgres } from "./lib.js";

const jobs = Number(process.argv[2] ?? 2000);
const server = await startBenchPostgres();
let n = 0;
const fresh = async () => {
  const name = `smoke_${n++}`;
  await createDatabase(server.url(), name);
  return server.url(name);
};
const show = (label: string, r: { jobsPerSec: number; ran: number; duplicates: number; seconds: number }) =>
  console.log(`${label.padEnd(28)} ${r.jobsPerSec.toFixed(0).padStart(7)} jobs/s  (${r.ran} ran, ${r.duplicates} duplicates, ${r.seconds.toFixed(2)} s)`);
try {
  progress(`N = ${jobs}`);
  show("graphile-worker defaults", await graphileWorkerThroughput(await fresh(), { jobs, concurrency: 10, tuned: false }));
  show("graphile-worker tuned", await graphileWorkerThroughput(await fresh(), { jobs, concurrency: 10, tuned: true }));
  show("pg-boss batch 10", await pgBossThroughput(await fresh(), { jobs, concurrency: 10 }));
  const lat = await graphileWorkerLatency(await fresh(), { samples: 200 });
  console.log(`graphile-worker latency      p50 ${lat.p50.toFixed(2)} ms, p99 ${lat.p99.toFixed(2)} ms (200 samples)`);
} finally {
  await server.stop();
}
