// The capped-queue rows of `npm run bench` alone, beside the uncapped in-process row:
// `npx tsx bench/capped.ts [--jobs N]` (default 5000). Prints jobs/s per run.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import postgres from "postgres";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { CAPPED, joblineInProcess } from "./jobline.js";

const { values } = parseArgs({ options: { jobs: { type: "string", default: "5000" }, repeat: { type: "string", default: "1" } } });
const dataDir = mkdtempSync(join(tmpdir(), "jobline-capped-"));
const server = await startEmbeddedPostgres({ dataDir, persistent: false });
let n = 0;
const freshDb = async () => {
  const name = `capped_${n++}`;
  const admin = postgres(server.url(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE ${name}`);
  await admin.end();
  await migrate(server.url(name));
  return server.url(name);
};
try {
  const jobs = Number(values.jobs);
  for (let r = 0; r < Number(values.repeat); r++)
    for (const [name, capped] of [["uncapped", undefined], ["concurrency 10", CAPPED.concurrency10], ["groupConcurrency 1 over 100 keys", CAPPED.serial100]] as const) {
      const rate = await joblineInProcess(await freshDb(), { jobs, concurrency: 4000, batchSize: 2000, ...(capped ? { capped } : {}) });
      process.stdout.write(`${name}: ${Math.round(rate)} jobs/s (${jobs} jobs)\n`);
    }
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
