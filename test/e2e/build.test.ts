import { execFile } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, runCli } from "./helpers/processes.js";
import { useJobline } from "./helpers/useJobline.js";
import { api } from "./helpers/util.js";

// `npm run build` output, laid out as the image has it (no src/, so no way back to tsx), runs.
const exec = promisify(execFile);
const TRACE = join(import.meta.dirname, "helpers", "trace-imports.mjs");
const app = mkdtempSync(join(tmpdir(), "jobline-build-"));
const t = useJobline("build");
// Without JOBLINE_FROM_SOURCE (set for the tests), bin/jobline.js runs dist/.
const env = { JOBLINE_FROM_SOURCE: undefined };

beforeAll(async () => {
  await exec(process.execPath, [join(ROOT, "scripts", "build.mjs"), join(app, "dist")], { timeout: 240_000 });
  mkdirSync(join(app, "bin"));
  copyFileSync(join(ROOT, "bin", "jobline.js"), join(app, "bin", "jobline.js"));
  copyFileSync(join(ROOT, "package.json"), join(app, "package.json"));
  symlinkSync(join(ROOT, "drizzle"), join(app, "drizzle"));
  symlinkSync(join(ROOT, "node_modules"), join(app, "node_modules"));
}, 300_000);

afterAll(() => rmSync(app, { recursive: true, force: true }));

const BIN = () => join(app, "bin", "jobline.js");

describe("the compiled build", () => {
  it("runs migrate from dist/ without tsx", async () => {
    const trace = join(app, "imports.txt");
    const migrateEnv = { ...env, DATABASE_URL: t.databaseUrl, TRACE_IMPORTS_FILE: trace };
    const out = await runCli(["migrate"], migrateEnv, { bin: BIN(), nodeArgs: ["--import", TRACE], timeout: 120_000 });
    expect(out.stdout).toContain("migrations applied");
    const loaded = readFileSync(trace, "utf8");
    expect(loaded).toContain(`${app}/dist/cli.js`);
    expect(loaded).not.toContain("/tsx/");
    expect(loaded).not.toContain(`${ROOT}/src/`);
  });

  it("serves the API and the dashboard from dist/, and drains on SIGTERM", async () => {
    const server = await t.start("serve", env, { bin: BIN() });
    const url = server.url;
    expect((await fetch(`${url}/dashboard`)).status).toBe(200);
    expect((await api(url, t.admin, "POST", "/v1/jobs", { queue: "built", kind: "k" })).status).toBe(201);
    server.signal("SIGTERM");
    expect((await server.exited).code).toBe(0);
  });
});
