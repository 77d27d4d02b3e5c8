// The CPU budget of an HTTP target on this machine: whether it could be met at all. The
// polling clients, the API and PostgreSQL share the same cores, so at a target rate of R
// jobs/s they may spend together at most cores × 10⁶ / R µs of CPU per job. Two parts of that
// are measured here without jobline's API: a bare HTTP exchange (bench/bare-api.mjs: plain
// node:http, canned answers, no database) paced to the target rate with the benchmark's own
// clients, and PostgreSQL's CPU per job in jobline's cheapest mode. What is left is all an
// API could spend on its own work (authentication, validation, SQL, rows, serialisation).
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { post } from "./jobline.js";
import { postgresCpuMs, processCpuMs, withTimeout } from "./lib.js";

export interface CpuPerJob {
  /** The server process (an API), PostgreSQL's processes and this process (the clients), µs per job. */
  server: number;
  postgres: number;
  clients: number;
}

/** Starts a CPU window; its end divides each part's CPU by `jobs`. */
export function cpuWindow(serverPid?: number) {
  const server0 = serverPid ? processCpuMs(serverPid) : 0;
  const pg0 = postgresCpuMs();
  const c0 = process.cpuUsage();
  return (jobs: number): CpuPerJob => {
    const c = process.cpuUsage(c0);
    const us = (ms: number) => (ms * 1000) / jobs;
    return {
      server: serverPid ? us(processCpuMs(serverPid) - server0) : 0,
      postgres: us(postgresCpuMs() - pg0),
      clients: (c.user + c.system) / jobs,
    };
  };
}

async function startBareApi(max: number, delayMs: number) {
  const child = spawn(process.execPath, [join(import.meta.dirname, "bare-api.mjs")], {
    env: { ...process.env, MAX: String(max), DELAY_MS: String(delayMs) },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const line = createInterface({ input: child.stdout! });
  const port = await withTimeout(
    new Promise<string>((resolve) => line.once("line", resolve)),
    10_000,
    "bare API did not start",
  ).catch((e: unknown) => {
    child.kill("SIGKILL");
    throw e;
  });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (child.exitCode !== null) return resolve();
      child.once("exit", () => resolve());
      child.kill("SIGKILL");
    });
  return { url: `http://127.0.0.1:${port}`, key: "bare", pid: child.pid!, stop };
}

/**
 * 16 clients (the benchmark's, bench/jobline.ts) against the bare API for `jobs` jobs. With
 * max 1 each job is a poll and its own complete; with more, the next poll carries the
 * completions. Each answer waits `delayMs`, standing in for the database's round trip.
 */
async function bareRun(o: { max: number; delayMs: number; jobs: number; clients: number }) {
  const api = await startBareApi(o.max, o.delayMs);
  try {
    let done = 0;
    const t0 = performance.now();
    const end = cpuWindow(api.pid);
    await Promise.all(
      Array.from({ length: o.clients }, async (_, i) => {
        let owed: { id: string; leaseToken: string }[] = [];
        while (done < o.jobs) {
          const complete = o.max > 1 ? { complete: owed } : {};
          const r = await post<{ jobs: { id: string; leaseToken: string }[] }>(api, "/v1/process-next", { queues: ["bench"], workerId: `c${i}`, max: o.max, ...complete });
          owed = r.body.jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken }));
          if (o.max === 1) await post(api, `/v1/jobs/${owed[0]!.id}/complete`, { leaseToken: owed[0]!.leaseToken });
          done += r.body.jobs.length;
        }
      }),
    );
    const jobsPerSec = done / ((performance.now() - t0) / 1000);
    const cpu = end(done);
    return { jobsPerSec, server: cpu.server, clients: cpu.clients };
  } finally {
    await api.stop();
  }
}

/**
 * The bare exchange paced to about `rate` jobs/s: the answers' delay is set from a first run's
 * overhead per cycle, and the second run is the one reported (its rate is printed beside it).
 */
export async function bareExchange(o: { max: number; rate: number; jobs: number; clients?: number }) {
  const clients = o.clients ?? 16;
  // One client's cycle, in ms, at the target rate: each of its requests (a poll, and at max 1
  // a complete) waits the delay once.
  const cycleMs = (rate: number) => (clients * o.max * 1000) / rate;
  const perCycle = o.max === 1 ? 2 : 1;
  const first = await bareRun({ max: o.max, delayMs: Math.max(0, Math.round(cycleMs(o.rate) / perCycle)), jobs: o.jobs, clients });
  const overheadMs = cycleMs(first.jobsPerSec) - Math.round(cycleMs(o.rate) / perCycle) * perCycle;
  const delayMs = Math.max(0, Math.round((cycleMs(o.rate) - overheadMs) / perCycle));
  const r = await bareRun({ max: o.max, delayMs, jobs: o.jobs, clients });
  return { ...r, delayMs };
}
