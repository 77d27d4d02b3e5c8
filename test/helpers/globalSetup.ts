import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import type { TestProject } from "vitest/node";
import { startEmbeddedPostgres } from "../../src/db/embedded.js";
import { migrate } from "../../src/db/migrate.js";

declare module "vitest" {
  export interface ProvidedContext {
    adminUrl: string;
    templateDb: string;
  }
}

const TEMPLATE = "jobline_template";

/**
 * One PostgreSQL per test run: TEST_DATABASE_URL when set, else an embedded
 * server. Migrations run once into a template; each test file clones it.
 */
export default async function setup(project: TestProject) {
  let adminUrl = process.env.TEST_DATABASE_URL;
  let stop = async () => {};
  let dataDir: string | null = null;
  if (!adminUrl) {
    dataDir = mkdtempSync(join(tmpdir(), "jobline-test-pg-"));
    // pg_stat_statements lets a test count the statements a code path really ran.
    const server = await startEmbeddedPostgres({
      dataDir,
      persistent: false,
      postgresFlags: ["-c", "shared_preload_libraries=pg_stat_statements"],
    });
    adminUrl = server.url();
    stop = server.stop;
  }
  const admin = postgres(adminUrl, { max: 1, onnotice: () => {} });
  await admin.unsafe(`DROP DATABASE IF EXISTS ${TEMPLATE} WITH (FORCE)`);
  await admin.unsafe(`CREATE DATABASE ${TEMPLATE}`);
  const u = new URL(adminUrl);
  u.pathname = `/${TEMPLATE}`;
  await migrate(u.toString());
  await admin.end();
  project.provide("adminUrl", adminUrl);
  project.provide("templateDb", TEMPLATE);
  return async () => {
    await stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  };
}
