// The TypeScript SDK's runHttpWorker against one API process: `npx tsx bench/sdk-worker.ts [N] [concurrency]`.
// 16 workers, each with `concurrency` slots, over N no-op jobs; prints jobs/s from the first
// handler call until every job has succeeded in the database. WARMUP env: jobs through the same API first.
import postgres from "postgres";
import { migrate } from "../src/db/migrate.js";
import { startBenchPostgres } from "./lib.js";
import { sdkWorkerThroughput } from "./sdk.js";

const [N = 10_000, C = 1] = process.argv.slice(2).map(Number);
const s = await startBenchPostgres();
try {
  const admin = postgres(s.url(), { max: 1, onnotice: () => {} });
  await admin.unsafe("CREATE DATABASE sdk");
  await admin.end();
  await migrate(s.url("sdk"));
  const r = await sdkWorkerThroughput(s.url("sdk"), { jobs: N, concurrency: C, warmup: Number(process.env.WARMUP ?? 0) });
  console.log(`runHttpWorker x16, concurrency ${C}: ${Math.round(r)} jobs/s`);
} finally {
  await s.stop();
}
