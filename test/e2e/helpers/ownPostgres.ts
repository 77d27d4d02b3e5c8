import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { type EmbeddedServer, startEmbeddedPostgres } from "../../../src/db/embedded.js";
import { migrate } from "../../../src/db/migrate.js";

/**
 * A PostgreSQL of the file's own (own data directory and port) with a migrated database
 * `jobline`, for tests that stop and start it: that touches no other test file.
 */
export type OwnPostgres = Awaited<ReturnType<typeof startOwnPostgres>>;

export async function startOwnPostgres(prefix: string) {
  const dataDir = mkdtempSync(join(tmpdir(), prefix));
  let pg: EmbeddedServer | null = await startEmbeddedPostgres({ dataDir, persistent: true });
  const port = pg.port;
  const admin = postgres(pg.url("postgres"), { max: 1, onnotice: () => {} });
  await admin`CREATE DATABASE jobline`;
  await admin.end();
  const url = pg.url("jobline");
  await migrate(url);
  return {
    url,
    port,
    stop: async () => {
      await pg!.stop();
      pg = null;
    },
    /** Starts it again on the same data directory and port. */
    start: async () => {
      pg = await startEmbeddedPostgres({ dataDir, port, persistent: true });
    },
    destroy: async () => {
      await pg?.stop().catch(() => {});
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
