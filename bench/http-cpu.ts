// Where HTTP process-next's time goes: `npx tsx bench/http-cpu.ts [N] [max…]`. For each max, prints
// jobs/s with the CPU the API process, the PostgreSQL backends and the polling clients (this
// process) each spent per job over the same window (/proc). ACK=1: clients complete with the next poll.
// WARMUP env: jobs served by the same API process first, outside the window (a serving API is warm).
import { readFileSync } from "node:fs";
import postgres from "postgres";
import { migrate } from "../src/db/migrate.js";
import { joblineHttp } from "./jobline.js";
import { cpuWindow } from "./budget.js";
import { startBenchPostgres } from "./lib.js";

const [N = 20_000, ...maxes] = process.argv.slice(2).map(Number);
const s = await startBenchPostgres();
try {
  for (const [i, max] of (maxes.length ? maxes : [1, 10]).entries()) {
    const admin = postgres(s.url(), { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE h${i}`);
    await admin.end();
    await migrate(s.url(`h${i}`));
    let split = "";
    const jobsPerSec = await joblineHttp(s.url(`h${i}`), { jobs: N, clients: 16, max, ack: process.env.ACK === "1", warmup: Number(process.env.WARMUP ?? 0) }, (api) => {
      const [t0, end] = [performance.now(), cpuWindow(api.child.pid)];
      const sched = () => readFileSync(`/proc/${api.child.pid}/schedstat`, "utf8").split(" ").map(Number);
      const q0 = sched();
      return () => {
        const ms = performance.now() - t0;
        const cpu = end(N);
        const parts = { API: cpu.server, PostgreSQL: cpu.postgres, clients: cpu.clients };
        split = Object.entries(parts)
          .map(([k, us]) => `${k} ${us.toFixed(0)} µs/job (${((us * N) / 1000 / ms).toFixed(2)} cores)`)
          .join(", ");
        const q = sched();
        split += `; API waiting to run ${((q[1]! - q0[1]!) / 1e6 / ms).toFixed(2)} of the time, ${((q[2]! - q0[2]!) / N).toFixed(1)} slices/job`;
      };
    });
    console.log(`max ${max}: ${Math.round(jobsPerSec)} jobs/s; ${split}`);
  }
} finally {
  await s.stop();
}
