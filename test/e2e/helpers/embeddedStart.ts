import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll } from "vitest";
import { stopPostmaster } from "../../../src/db/embedded.js";
import { type ChildEnv, startJobline, stopAll } from "./processes.js";

/**
 * `jobline start` without DATABASE_URL on a fresh JOBLINE_DATA_DIR (its own embedded PostgreSQL).
 * After the file: every process stopped by pid, a PostgreSQL a killed start left behind stopped,
 * the directory removed.
 */
export function useEmbeddedStart(prefix: string) {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const pgdata = join(dir, "pgdata");
  const env: ChildEnv = { JOBLINE_DATA_DIR: dir, DATABASE_URL: undefined, JOBLINE_BOOTSTRAP_KEY: undefined };
  afterAll(async () => {
    try {
      await stopAll(20_000);
    } finally {
      await stopPostmaster(pgdata, 5000);
      rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
  const start = (extra: ChildEnv = {}, opts: { readyMs?: number } = {}) => startJobline("start", undefined, { ...env, ...extra }, opts);
  return { dir, pgdata, env, start };
}
