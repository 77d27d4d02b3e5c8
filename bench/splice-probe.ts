// Lever probe (issue 30): what splicing process-next's lean jobs as JSON text built by PostgreSQL
// would save, against today's lean path (jobs.* parsed by postgres.js, workerJobDto, JSON.stringify).
// `npx tsx bench/splice-probe.ts [ROUNDS]`: 100-row reads of claimed jobs, alternating A/B, CPU µs per
// job of this process (the API's side) and of the PostgreSQL backend (/proc), median of the rounds.
// Measured (loaded 2-core machine, 5 rounds): parse 33.1 µs/job here (15.8–34.1) + PostgreSQL 7.7;
// splice 10.5 (7.2–12.8) + PostgreSQL 13.7. Not built: the route's gain needs the claim's RETURNING
// cut to the spliced text plus the few columns the services use (see docs/performance.md, issue 30).
import { readFileSync } from "node:fs";
import postgres from "postgres";
import { connect } from "../src/db/client.js";
import { migrate } from "../src/db/migrate.js";
import { workerJobDto } from "../src/services/representation.js";
import type { JobRow } from "../src/repositories/jobs.js";
import { seedJobs } from "./jobline.js";
import { startBenchPostgres } from "./lib.js";

const rounds = Number(process.argv[2] ?? 5);
const ITER = 300;
const s = await startBenchPostgres();
try {
  const admin = postgres(s.url(), { max: 1, onnotice: () => {} });
  await admin.unsafe("CREATE DATABASE sp");
  await admin.end();
  await migrate(s.url("sp"));
  await seedJobs(s.url("sp"), 100);
  const db = connect(s.url("sp"), { max: 1 });
  const sql = db.sql;
  await sql`UPDATE jobs SET status = 'running', attempts = 1, lease_token = gen_random_uuid(), lease_expires_at = now() + interval '60 s',
    started_at = now(), worker_id = 'w', traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'`;
  const [{ pid }] = (await sql<{ pid: number }[]>`SELECT pg_backend_pid() AS pid`) as unknown as [{ pid: number }];
  const pgCpu = () => {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return ((Number(f[11]) + Number(f[12])) * 1e6) / 100; // utime + stime, clock ticks → µs
  };
  const iso = (c: string) => sql.unsafe(`to_char(${c} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`);
  const arms = {
    parse: async () => {
      const rows = await sql<JobRow[]>`SELECT * FROM jobs ORDER BY id LIMIT 100`;
      return JSON.stringify({ jobs: rows.map(workerJobDto) }).length;
    },
    splice: async () => {
      const rows = await sql<Array<{ id: string; wire: string }>>`
        SELECT id, tenant, queue, kind, status, lease_token, worker_id, started_at, traceparent, tracestate,
          json_build_object('id', id, 'queue', queue, 'kind', kind, 'payload', payload, 'attempts', attempts, 'maxAttempts', max_attempts,
            'leaseToken', lease_token, 'leaseExpiresAt', ${iso("lease_expires_at")}, 'deadlineAt', ${iso("deadline_at")},
            'traceparent', traceparent, 'tracestate', tracestate, 'progress', progress)::text AS wire
        FROM jobs ORDER BY id LIMIT 100`;
      let out = '{"jobs":[';
      for (let i = 0; i < rows.length; i++) out += (i ? "," : "") + rows[i]!.wire;
      return (out + "]}").length;
    },
  };
  const res: Record<string, { api: number[]; pg: number[]; bytes: number }> = { parse: { api: [], pg: [], bytes: 0 }, splice: { api: [], pg: [], bytes: 0 } };
  for (const [name, fn] of Object.entries(arms)) for (let i = 0; i < 50; i++) res[name]!.bytes = await fn(); // warm
  for (let r = 0; r < rounds; r++) {
    for (const [name, fn] of Object.entries(arms)) {
      const [c0, p0] = [process.cpuUsage(), pgCpu()];
      for (let i = 0; i < ITER; i++) await fn();
      const c = process.cpuUsage(c0);
      res[name]!.api.push((c.user + c.system) / (ITER * 100));
      res[name]!.pg.push((pgCpu() - p0) / (ITER * 100));
    }
  }
  const med = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)]!;
  for (const [name, r] of Object.entries(res))
    console.log(
      `${name}: this process ${med(r.api).toFixed(1)} µs/job (${Math.min(...r.api).toFixed(1)}–${Math.max(...r.api).toFixed(1)}), ` +
        `PostgreSQL ${med(r.pg).toFixed(1)} µs/job (${Math.min(...r.pg).toFixed(1)}–${Math.max(...r.pg).toFixed(1)}), ${r.bytes / 100} bytes/job`,
    );
  await db.close();
} finally {
  await s.stop();
}
