// What the queue figures cost with a long retention window: `npx tsx bench/queue-stats.ts`
// (10,000 queued and 1,000,000 finished jobs in 10 queues; GET /v1/queues and the queue
// gauges run both statements).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { camelColumns } from "../src/db/client.js";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { jobsRepository } from "../src/repositories/jobs.js";

const s = await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "jlq-")), persistent: false });
await migrate(s.url());
const sql = postgres(s.url(), { max: 1, onnotice: () => {}, transform: camelColumns });
await sql`INSERT INTO jobs (tenant, queue, kind, payload, status, finished_at, fair_tag)
  SELECT 'a', 'q' || (n % 10), 'k', '{}', 'succeeded', now(), n FROM generate_series(1, 1000000) n`;
await sql`INSERT INTO jobs (tenant, queue, kind, payload, fair_tag) SELECT 'a', 'q' || (n % 10), 'k', '{}', n FROM generate_series(1, 10000) n`;
await sql`VACUUM ANALYZE jobs`;
const jobs = jobsRepository(sql);
const median = async (f: () => Promise<unknown>) => {
  const t: number[] = [];
  for (let i = 0; i < 5; i++) {
    const t0 = performance.now();
    await f();
    t.push(performance.now() - t0);
  }
  return t.sort((a, b) => a - b)[2]!.toFixed(1);
};
console.log(`counts per queue and status: median ${await median(() => jobs.countByQueue(null))} ms`);
console.log(`oldest claimable per queue: median ${await median(() => jobs.oldestClaimableByQueue(null))} ms`);
console.log(
  `the same age as one filter over every job: median ${await median(
    () => sql`SELECT queue, min(run_at) FROM jobs WHERE status = 'queued' AND run_at <= now() GROUP BY queue`,
  )} ms`,
);
await sql.end();
await s.stop();
