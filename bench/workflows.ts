// Workflows bench (issue 28 point 6): N jobs in chains of 10, each step released by the
// statement that completes its parent, through the in-process worker, against the same N jobs
// without dependencies. `npx tsx bench/workflows.ts [N] [concurrency]` (npm run bench:workflows).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { testConfig } from "../src/config.js";
import { createContainer } from "../src/container.js";
import { camelColumns } from "../src/db/client.js";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { uuidv7 } from "../src/domain/ids.js";
import { insertEdges } from "../src/repositories/jobs/dependencies.js";
import { jobsRepository, type NewJob } from "../src/repositories/jobs.js";
import { toNewJob } from "../src/services/jobs.js";
import { createWorker } from "../src/worker/inProcess.js";
import { withTimeout } from "./lib.js";

const N = Number(process.argv[2] ?? 10_000);
const CONCURRENCY = Number(process.argv[3] ?? 50);
const CHAIN = 10;

async function run(label: string, chained: boolean) {
  const s = await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "jlw-")), persistent: false });
  await migrate(s.url());
  const sql = postgres(s.url(), { max: 1, transform: camelColumns, onnotice: () => {} });
  const repo = jobsRepository(sql);
  // Untimed set-up: every job inserted (the chains' later steps waiting, as a submit with dependsOn leaves them).
  const jobs: NewJob[] = [];
  const edges: Array<{ parentId: string; parentIsBatch: boolean; childId: string }> = [];
  for (let i = 0; i < N; i++) {
    const parent = chained && i % CHAIN !== 0 ? jobs[i - 1]!.id! : null;
    const id = uuidv7(Date.now());
    jobs.push(toNewJob("bench", { queue: "bench", kind: "noop", payload: {} }, { id, dependsOn: parent ? { jobs: [parent], batches: [] } : null }));
    if (parent) edges.push({ parentId: parent, parentIsBatch: false, childId: id });
  }
  for (let i = 0; i < N; i += 5000)
    await sql.begin(async (tx) => {
      await repo.insertMany(jobs.slice(i, i + 5000), tx);
      await insertEdges(edges.filter((e) => jobs.slice(i, i + 5000).some((j) => j.id === e.childId)), tx);
    });
  await sql`VACUUM ANALYZE`;
  const c = createContainer(testConfig({ JOBLINE_DB_POOL_MAX: 10 }), s.url());
  await c.notifier.start();
  let done = 0;
  let finished!: () => void;
  const all = new Promise<void>((r) => {
    finished = r;
  });
  const t0 = performance.now();
  const w = createWorker({
    container: c,
    queues: ["bench"],
    concurrency: CONCURRENCY,
    waitMs: 1000,
    handlers: { noop: async () => null },
  });
  const poll = setInterval(async () => {
    const [r] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE status = 'succeeded'`;
    done = r!.n;
    if (done === N) finished();
  }, 100);
  await withTimeout(all, 600_000, `${label}: not every job finished`);
  const ms = performance.now() - t0;
  clearInterval(poll);
  await w.stop();
  await c.close();
  const [bad] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE NOT (status = 'succeeded' AND attempts = 1)`;
  await sql.end();
  await s.stop();
  if (bad!.n !== 0) throw new Error(`${label}: ${bad!.n} jobs not succeeded exactly once`);
  const rate = N / (ms / 1000);
  console.log(`${label}: ${N} jobs in ${ms.toFixed(0)} ms, ${rate.toFixed(0)} jobs/s`);
  return rate;
}

// Alternated, twice by default (ROUNDS), so a shared machine's load drifts onto both sides.
for (let round = 0; round < Number(process.env.ROUNDS ?? 2); round++) {
  const flat = await run("no dependencies", false);
  const chains = await run(`chains of ${CHAIN}`, true);
  console.log(`ratio chains/none: ${(chains / flat).toFixed(2)} (concurrency ${CONCURRENCY})`);
}
process.exit(0);
