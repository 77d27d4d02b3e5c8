// Step latency of a chain (issue 28 follow-up): parent finished_at → child started_at, from the
// database's own clocks, for one waiting long poll (the HTTP path's service) and for the
// in-process worker. `npx tsx bench/workflow-latency.ts [steps]`.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { testConfig } from "../src/config.js";
import { createContainer } from "../src/container.js";
import { camelColumns } from "../src/db/client.js";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { createWorker } from "../src/worker/inProcess.js";

const STEPS = Number(process.argv[2] ?? 20);

async function chain(c: ReturnType<typeof createContainer>, queue: string) {
  const ids: string[] = [];
  for (let i = 0; i < STEPS; i++) {
    const r = await c.services.jobs.submit("bench", { queue, kind: "noop", payload: {}, ...(i > 0 ? { dependsOn: { jobs: [ids[i - 1]!] } } : {}) });
    if (!r.ok) throw new Error(JSON.stringify(r));
    ids.push((r as unknown as { value: { id: string } }).value.id);
  }
  return ids;
}

async function gaps(sql: postgres.Sql, ids: string[]) {
  const rows = await sql<{ ms: number }[]>`
    SELECT extract(epoch FROM c.started_at - p.finished_at) * 1000 AS ms
    FROM unnest(${ids.slice(1)}::uuid[], ${ids.slice(0, -1)}::uuid[]) AS e(child, parent)
    JOIN jobs c ON c.id = e.child JOIN jobs p ON p.id = e.parent`;
  const ms = rows.map((r) => Number(r.ms)).sort((a, b) => a - b);
  return `median ${ms[Math.floor(ms.length / 2)]!.toFixed(1)} ms, max ${ms[ms.length - 1]!.toFixed(1)} ms (n=${ms.length})`;
}

const s = await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "jll-")), persistent: false });
await migrate(s.url());
const sql = postgres(s.url(), { max: 2, transform: camelColumns, onnotice: () => {} });
const c = createContainer(testConfig({ JOBLINE_DB_POOL_MAX: 10 }), s.url());
await c.notifier.start();

// One long poll at a time, waiting when the next step is not claimable yet.
const ids = await chain(c, "poll");
for (let i = 0; i < STEPS; i++) {
  const got = await c.services.jobs.claimNext({ queues: ["poll"], scope: null, workerId: "w", leaseSeconds: 30, max: 1, waitMs: 5000 });
  if (got.length !== 1) throw new Error(`step ${i}: nothing claimed`);
  await c.services.jobs.complete(got[0]!.id, null, got[0]!.leaseToken!, null);
}
console.log(`long poll: ${await gaps(sql, ids)}`);

const ids2 = await chain(c, "worker");
const w = createWorker({ container: c, queues: ["worker"], concurrency: 4, waitMs: 1000, handlers: { noop: async () => null } });
for (;;) {
  const [r] = await sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'worker' AND status = 'succeeded'`;
  if (r!.n === STEPS) break;
  await new Promise((r) => setTimeout(r, 50));
}
await w.stop();
console.log(`in-process worker: ${await gaps(sql, ids2)}`);
await c.close();
await sql.end();
await s.stop();
process.exit(0);
