import { type ChildProcess, execFile, spawn } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/db/embedded.js";
import { createTestDatabase } from "../helpers/db.js";

// `npm run build` output, laid out as the image has it (no src/, so no way back to tsx), runs.
const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");
const TRACE = join(import.meta.dirname, "helpers", "trace-imports.mjs");
const app = mkdtempSync(join(tmpdir(), "jobline-build-"));
let server: ChildProcess | undefined;
let drop: (() => Promise<void>) | undefined;
let env: NodeJS.ProcessEnv = {};

beforeAll(async () => {
  await exec(process.execPath, [join(ROOT, "scripts", "build.mjs"), join(app, "dist")], { timeout: 240_000 });
  mkdirSync(join(app, "bin"));
  copyFileSync(join(ROOT, "bin", "jobline.js"), join(app, "bin", "jobline.js"));
  copyFileSync(join(ROOT, "package.json"), join(app, "package.json"));
  symlinkSync(join(ROOT, "drizzle"), join(app, "drizzle"));
  symlinkSync(join(ROOT, "node_modules"), join(app, "node_modules"));
  const db = await createTestDatabase("build");
  drop = db.drop;
  const { JOBLINE_FROM_SOURCE: _, ...rest } = process.env;
  env = { ...rest, DATABASE_URL: db.url, LOG_LEVEL: "warn" };
}, 300_000);

afterAll(async () => {
  if (server?.pid && server.exitCode === null) {
    server.kill("SIGKILL");
    await new Promise((r) => server!.once("exit", r));
  }
  await drop?.();
  rmSync(app, { recursive: true, force: true });
});

const BIN = () => join(app, "bin", "jobline.js");

describe("the compiled build", () => {
  it("runs migrate from dist/ without tsx", async () => {
    const trace = join(app, "imports.txt");
    const out = await exec(process.execPath, ["--import", TRACE, BIN(), "migrate"], { env: { ...env, TRACE_IMPORTS_FILE: trace }, timeout: 120_000 });
    expect(out.stdout).toContain("migrations applied");
    const loaded = readFileSync(trace, "utf8");
    expect(loaded).toContain(`${app}/dist/cli.js`);
    expect(loaded).not.toContain("/tsx/");
    expect(loaded).not.toContain(`${ROOT}/src/`);
  });

  it("serves the API and the dashboard from dist/, and drains on SIGTERM", async () => {
    const port = await freePort();
    const key = "jl_build_test_bootstrap_key_0123456789";
    server = spawn(process.execPath, [BIN(), "serve"], { env: { ...env, PORT: String(port), JOBLINE_BOOTSTRAP_KEY: key }, stdio: ["ignore", "ignore", "inherit"] });
    const url = `http://127.0.0.1:${port}`;
    const deadline = Date.now() + 60_000;
    while (!(await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false))) {
      if (Date.now() > deadline || server.exitCode !== null) throw new Error("compiled server did not become ready");
      await new Promise((r) => setTimeout(r, 200));
    }
    expect((await fetch(`${url}/dashboard`)).status).toBe(200);
    const r = await fetch(`${url}/v1/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
      body: JSON.stringify({ queue: "built", kind: "k" }),
    });
    expect(r.status).toBe(201);
    const exited = new Promise<number | null>((res) => server!.once("exit", res));
    server.kill("SIGTERM");
    expect(await exited).toBe(0);
  });
});
