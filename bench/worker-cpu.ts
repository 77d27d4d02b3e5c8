// Where an in-process worker's time goes: `npx tsx bench/worker-cpu.ts [N] [concurrency] [batch]`.
// Seeds N no-op jobs, runs createWorker over them, and prints jobs/s with the CPU the worker
// process and the PostgreSQL backends each spent per job over the same window (/proc).
// PROF=1 writes a CPU profile of the worker to /tmp/worker.cpuprofile; FIELDS=full runs handlers on full jobs (default worker fields).
import { mkdtempSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { testConfig } from "../src/config.js";
import { createContainer } from "../src/container.js";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { createWorker } from "../src/worker/inProcess.js";
import { seedJobs } from "./jobline.js";
import { postgresCpuMs } from "./lib.js";

const [N, C, B] = [Number(process.argv[2] ?? 100_000), Number(process.argv[3] ?? 4000), Number(process.argv[4] ?? 2000)];

const s = await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "jlw-")), persistent: false });
try {
  const admin = postgres(s.url(), { max: 1, onnotice: () => {} });
  await admin`CREATE DATABASE w`;
  await admin.end();
  const url = s.url("w");
  await migrate(url);
  await seedJobs(url, N);
  const c = createContainer(testConfig({ JOBLINE_DB_POOL_MAX: 10 }), url);
  await c.notifier.start();
  const inspector = new Session();
  inspector.connect();
  if (process.env.PROF === "1") {
    await inspector.post("Profiler.enable");
    await inspector.post("Profiler.start");
  }
  let first = 0;
  const cpu0 = process.cpuUsage();
  const pg0 = postgresCpuMs();
  const w = createWorker({
    container: c,
    queues: ["bench"],
    concurrency: C,
    batchSize: B,
    // As bench/jobline.ts's in-process rows: worker fields unless FIELDS=full.
    fields: process.env.FIELDS === "full" ? "full" : "worker",
    handlers: {
      noop: async () => {
        if (!first) first = performance.now();
        return null;
      },
    },
  });
  const succeeded = async () => (await c.metrics.transitions.get()).values.find((v) => v.labels.to === "succeeded")?.value ?? 0;
  while ((await succeeded()) < N) await new Promise((r) => setTimeout(r, 2));
  const ms = performance.now() - first;
  const cpu = process.cpuUsage(cpu0);
  const pgMs = postgresCpuMs() - pg0;
  if (process.env.PROF === "1") {
    const { profile } = await inspector.post("Profiler.stop");
    writeFileSync("/tmp/worker.cpuprofile", JSON.stringify(profile));
  }
  const workerUs = (cpu.user + cpu.system) / N;
  console.log(
    `${Math.round(N / (ms / 1000))} jobs/s (N ${N}, concurrency ${C}, batch ${B}); worker ${workerUs.toFixed(1)} µs/job, ` +
      `${((cpu.user + cpu.system) / 1000 / ms).toFixed(2)} cores; PostgreSQL ${((pgMs * 1000) / N).toFixed(1)} µs/job, ${(pgMs / ms).toFixed(2)} cores`,
  );
  await w.stop();
  await c.close();
} finally {
  await s.stop();
}
