// Claim and promotion latency while an open batch holds many due jobs, and what the seal
// costs: `npx tsx bench/open-batch.ts [N]`. BEFORE=1 tags the batch's jobs as releases
// before open-batch tags did (in the claim index, or in the held index when scheduled).
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { camelColumns } from "../src/db/client.js";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { jobsRepository } from "../src/repositories/jobs.js";
import { toNewJob } from "../src/services/jobs.js";

const N = Number(process.argv[2] ?? 50_000);
const before = process.env.BEFORE === "1";
const s = await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "jlo-")), persistent: false });
await migrate(s.url());
const sql = postgres(s.url(), { max: 1, onnotice: () => {}, transform: camelColumns });
const jobs = jobsRepository(sql);
const median = (xs: number[]) => xs.sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
async function timed(n: number, f: () => Promise<unknown>) {
  const t: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await f();
    t.push(performance.now() - t0);
  }
  return median(t).toFixed(2);
}
async function measure(label: string) {
  // 400 ordinary jobs, tagged after everything already in the queue.
  await sql`INSERT INTO jobs (tenant, queue, kind, payload, fair_tag)
    SELECT 'a', 'q', 'k', '{}', (SELECT coalesce(max(fair_tag), 0) FROM jobs WHERE fair_tag < 4503599627370496) + n
    FROM generate_series(1, 400) n`;
  await sql`ANALYZE`;
  const claim = await timed(300, async () => {
    const r = await jobs.claimNext({ queues: ["q"], tenant: null, workerId: "w", leaseSeconds: 60, max: 1 });
    await jobs.completeManyIfLeased(r.map((x) => ({ id: x.id, leaseToken: x.leaseToken!, result: null })), null);
  });
  const promotion = await timed(50, () => sql.begin((tx) => jobs.promoteDue(1000, tx)));
  console.log(`${label}: median claim ${claim} ms, median empty promotion ${promotion} ms`);
}
await measure("no open batch");
const [b] = await sql<{ id: string }[]>`INSERT INTO batches (tenant, status, total, remaining) VALUES ('a', 'preparing', ${N}, ${N}) RETURNING id`;
// Half submitted as scheduled a minute ahead (held before), then all made due.
const input = Array.from({ length: N }, (_, i) =>
  toNewJob("a", { queue: "q", kind: "k", payload: { i }, runAt: i % 2 ? new Date(Date.now() + 60_000).toISOString() : undefined }, { batchId: b!.id, untilSealed: !before }),
);
await sql.begin((tx) => jobs.insertMany(input, tx));
await sql`UPDATE jobs SET run_at = now() - interval '1 second' WHERE batch_id = ${b!.id}`;
await measure(`open batch of ${N} due jobs${before ? " (tagged as before open-batch tags)" : ""}`);
if (!before) {
  const sweep = await timed(50, () => jobs.releaseStragglers(1000));
  console.log(`reaper's straggler release with the batch open: median ${sweep} ms`);
  const t0 = performance.now();
  const released = await sql.begin((tx) => jobs.releaseQueuedOfSealed(b!.id, tx));
  console.log(`seal's release of ${released} jobs: ${(performance.now() - t0).toFixed(0)} ms`);
}
await sql.end();
await s.stop();
