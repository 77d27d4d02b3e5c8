import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll } from "vitest";
import { freePort } from "../../../src/db/embedded.js";
import { createTestDatabase } from "../../helpers/db.js";

const run = promisify(execFile);
export const BIN = join(import.meta.dirname, "..", "..", "..", "bin", "jobline.js");

/**
 * A `jobline serve` process on a fresh database for a test file, with an admin key; `cli` runs
 * the CLI against it (JOBLINE_URL and JOBLINE_API_KEY set). Stopped by pid after the file.
 */
export function useCliServer(label: string) {
  const s = { admin: `jl_cli_${randomBytes(16).toString("hex")}`, env: {} as NodeJS.ProcessEnv, databaseUrl: "" };
  let server: ChildProcess | undefined;
  let drop: (() => Promise<void>) | undefined;

  beforeAll(async () => {
    const db = await createTestDatabase(label);
    drop = db.drop;
    s.databaseUrl = db.url;
    const port = await freePort();
    s.env = { ...process.env, JOBLINE_URL: `http://127.0.0.1:${port}`, JOBLINE_API_KEY: s.admin, LOG_LEVEL: "warn" };
    server = spawn(process.execPath, [BIN, "serve"], {
      env: { ...s.env, DATABASE_URL: db.url, PORT: String(port), JOBLINE_BOOTSTRAP_KEY: s.admin },
      stdio: ["ignore", "ignore", "inherit"],
    });
    // Generous: a loaded machine (2 shared cores) can take long to load the sources through tsx.
    const deadline = Date.now() + 120_000;
    while (!(await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok).catch(() => false))) {
      if (Date.now() > deadline || server!.exitCode !== null) throw new Error("server did not become ready");
      await new Promise((r) => setTimeout(r, 100));
    }
  }, 180_000);

  afterAll(async () => {
    if (server && server.exitCode === null) {
      const exited = new Promise((r) => server!.once("exit", r));
      server.kill("SIGTERM");
      const t = setTimeout(() => server!.kill("SIGKILL"), 10_000);
      await exited;
      clearTimeout(t);
    }
    await drop?.();
  });

  const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) => run(process.execPath, [BIN, ...args], { env: { ...s.env, ...extra }, timeout: 60_000 });
  return Object.assign(s, { cli });
}
