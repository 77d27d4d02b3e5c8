// Quick exploration: raw throughput of jobline's claim + complete statements.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { camelColumns } from "../src/db/client.js";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { jobsRepository, type NewJob } from "../src/repositories/jobs.js";

const N = Number(process.argv[2] ?? 20000);
const batch = Number(process.argv[3] ?? 10);
const conc = Number(process.argv[4] ?? 10);
const s = await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "jlb-")), persistent: false });
const admin = postgres(s.url(), { max: 1 });
await admin`CREATE DATABASE b`;
await admin.end();
await migrate(s.url("b"));
const sql = postgres(s.url("b"), { max: conc, transform: camelColumns, onnotice: () => {} });
const repo = jobsRepository(sql);
const jobs: NewJob[] = Array.from({ length: N }, () => ({ tenant: "t", queue: "q", kind: "k", payload: {}, priority: 0, groupKey: null, runAt: null, maxAttempts: 5, webhookUrl: null, idempotencyKey: null, requestHash: null, batchId: null }));
for (let i = 0; i < N; i += 5000) await sql.begin((tx) => repo.insertMany(jobs.slice(i, i + 5000), tx));
const t0 = performance.now();
let done = 0;
await Promise.all(Array.from({ length: conc }, async (_, w) => {
  for (;;) {
    const rows = await repo.claimNext({ queues: ["q"], tenant: null, workerId: `w${w}`, leaseSeconds: 60, max: batch });
    if (rows.length === 0) return;
    if (batch === 1) await repo.completeIfLeased(rows[0]!.id, rows[0]!.leaseToken!, null, null);
    else await repo.completeManyIfLeased(rows.map((r) => ({ id: r.id, leaseToken: r.leaseToken!, result: null })), null);
    done += rows.length;
  }
}));
const secs = (performance.now() - t0) / 1000;
console.log(`N=${N} batch=${batch} conc=${conc}: ${Math.round(done / secs)} jobs/s`);
await sql.end();
await s.stop();
