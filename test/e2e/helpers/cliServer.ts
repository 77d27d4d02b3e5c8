import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { beforeAll } from "vitest";
import { BIN } from "./processes.js";
import { useJobline } from "./useJobline.js";

const run = promisify(execFile);

/**
 * A `jobline serve` process on a fresh database for a test file, with an admin key; `cli` runs
 * the CLI against it (JOBLINE_URL and JOBLINE_API_KEY set). Stopped by pid after the file.
 */
export function useCliServer(label: string) {
  const t = useJobline(label);
  const s = { admin: t.admin, env: {} as NodeJS.ProcessEnv, databaseUrl: "" };

  beforeAll(async () => {
    const server = await t.start("serve");
    s.databaseUrl = t.databaseUrl;
    s.env = { ...process.env, JOBLINE_URL: server.url, JOBLINE_API_KEY: s.admin, LOG_LEVEL: "warn" };
  }, 180_000);

  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => run(process.execPath, [BIN, ...args], { env: { ...s.env, ...extra }, timeout: 60_000 });
  return Object.assign(s, { cli });
}
