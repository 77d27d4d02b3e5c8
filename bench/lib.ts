// Shared helpers for the benchmark scripts.
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { startEmbeddedPostgres } from "../src/db/embedded.js";

export function progress(msg: string): void {
  process.stderr.write(`[bench] ${msg}\n`);
}

/** A throw-away embedded PostgreSQL; `stop()` also removes its data directory. */
export async function startBenchPostgres(): Promise<{ url: (db?: string) => string; stop: () => Promise<void> }> {
  const dataDir = mkdtempSync(join(tmpdir(), "jobline-bench-"));
  try {
    const server = await startEmbeddedPostgres({ dataDir, persistent: false });
    trackPostgres(dataDir);
    return {
      url: server.url,
      stop: async () => {
        try {
          await server.stop();
        } finally {
          rmSync(dataDir, { recursive: true, force: true });
        }
      },
    };
  } catch (e) {
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
}

/** CREATE DATABASE `name` (a plain identifier) on the server behind `adminUrl`. */
export async function createDatabase(adminUrl: string, name: string): Promise<void> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`bad database name: ${name}`);
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    await sql.unsafe(`CREATE DATABASE ${name}`);
  } finally {
    await sql.end();
  }
}

const sorted = (values: number[]) => {
  if (values.length === 0) throw new Error("no values");
  return [...values].sort((a, b) => a - b);
};

/** Nearest-rank percentile, p in [0, 100]. */
export function percentile(values: number[], p: number): number {
  const s = sorted(values);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

export function stats(values: number[]): { min: number; median: number; max: number } {
  const s = sorted(values);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
  return { min: s[0]!, median, max: s[s.length - 1]! };
}

/** Runs a measurement three times, sequentially, and returns all three values. */
export async function repeat3(fn: (run: number) => Promise<number>): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < 3; i++) out.push(await fn(i));
  return out;
}

/** Rejects with a clear error if `p` does not settle within `ms`. */
export async function withTimeout<T>(p: Promise<T>, ms: number, label: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, rej) => {
    timer = setTimeout(() => rej(new Error(`${label}: timed out after ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([p, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** CPU milliseconds used so far by one process (utime + stime from /proc). */
export function processCpuMs(pid: number) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return (Number(f[11]) + Number(f[12])) * 10;
}

const postmasters = new Set<number>();
/**
 * Counts only this server's processes in postgresCpuMs from now on: other PostgreSQL servers on
 * the machine (other people's tests) would otherwise add their CPU, or subtract it as they end.
 */
export function trackPostgres(dataDir: string) {
  postmasters.add(Number(readFileSync(join(dataDir, "pgdata", "postmaster.pid"), "utf8").split("\n")[0]));
}

/**
 * CPU milliseconds used so far by PostgreSQL: the tracked servers' postmasters with every child
 * they reaped (cutime, cstime: backends that ended) and their live children; without a tracked
 * server, every PostgreSQL process on the machine.
 */
export function postgresCpuMs() {
  let ms = 0;
  for (const pid of readdirSync("/proc")) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (postmasters.size === 0) {
        if (readFileSync(`/proc/${pid}/cmdline`, "utf8").startsWith("postgres:")) ms += processCpuMs(Number(pid));
        continue;
      }
      const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
      if (postmasters.has(Number(pid))) ms += (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) * 10;
      else if (postmasters.has(Number(f[1]))) ms += (Number(f[11]) + Number(f[12])) * 10;
    } catch {
      // The process ended meanwhile.
    }
  }
  return ms;
}

/**
 * Run time (all of this process's threads, from /proc/self/task/<tid>/schedstat) per 1 ms
 * sleep and wake-up, over `n` timers: what one wake-up costs on this machine. On a VM it
 * can be far more than the few µs of bare metal, and every round trip pays it.
 */
export async function wakeUpCostUs(n = 500): Promise<number> {
  const runNs = () => {
    let ns = 0;
    for (const t of readdirSync("/proc/self/task")) {
      try {
        ns += Number(readFileSync(`/proc/self/task/${t}/schedstat`, "utf8").split(" ")[0]);
      } catch {
        // The thread ended meanwhile.
      }
    }
    return ns;
  };
  try {
    const before = runNs();
    for (let i = 0; i < n; i++) await new Promise((r) => setTimeout(r, 1));
    return (runNs() - before) / 1000 / n;
  } catch {
    return Number.NaN;
  }
}
