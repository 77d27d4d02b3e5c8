// The TypeScript SDK's runHttpWorker against one API process: `npx tsx bench/sdk-worker.ts [N] [concurrency]`.
// 16 workers, each with `concurrency` slots, over N no-op jobs; prints jobs/s from the first
// handler call until every job has succeeded in the database.
import { setMaxListeners } from "node:events";
import postgres from "postgres";
import { runHttpWorker } from "../clients/typescript/src/index.js";
import { migrate } from "../src/db/migrate.js";
import { seedJobs, startApi } from "./jobline.js";
import { startBenchPostgres } from "./lib.js";

const [N = 10_000, C = 1] = process.argv.slice(2).map(Number);
const s = await startBenchPostgres();
try {
  const admin = postgres(s.url(), { max: 1, onnotice: () => {} });
  await admin.unsafe("CREATE DATABASE sdk");
  await admin.end();
  await migrate(s.url("sdk"));
  await seedJobs(s.url("sdk"), N);
  const api = await startApi(s.url("sdk"));
  const stop = new AbortController();
  // Each worker keeps up to two listeners on the stop signal they share (its wait for a slot, its poll's).
  setMaxListeners(64, stop.signal);
  let first = 0;
  let handled = 0;
  const workers = Array.from({ length: 16 }, (_, i) =>
    runHttpWorker({
      baseUrl: api.url,
      apiKey: api.key,
      queues: ["bench"],
      handlers: {
        noop: () => {
          first ||= performance.now();
          handled++;
        },
      },
      concurrency: C,
      waitMs: 1000,
      signal: stop.signal,
      workerId: `sdk-${i}`,
    }),
  );
  const db = postgres(s.url("sdk"), { max: 1 });
  for (;;) {
    const [r] = await db<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE status = 'succeeded'`;
    if (r!.n === N) break;
    await new Promise((r) => setTimeout(r, 5));
  }
  const ms = performance.now() - first;
  stop.abort();
  const stats = await Promise.all(workers);
  const succeeded = stats.reduce((n, x) => n + x.succeeded, 0);
  if (handled !== N || succeeded !== N) throw new Error(`ran ${handled} handlers and counted ${succeeded} successes for ${N} jobs`);
  console.log(`runHttpWorker x16, concurrency ${C}: ${Math.round((N / ms) * 1000)} jobs/s`);
  await db.end();
  await api.stop();
} finally {
  await s.stop();
}
