import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/db/embedded.js";
import { stopLeftoverPostgres } from "./helpers/leftoverPostgres.js";
import { until } from "../helpers/until.js";

// The README's walk-through, taken from README.md itself, pasted into bash against a real
// `jobline start` (what `npm start` runs) on a fresh data directory and port, as on a fresh clone.
const ROOT = join(import.meta.dirname, "..", "..");
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const README_URL = "URL=http://127.0.0.1:8080";

/** The ```bash blocks between the walk-through markers, in order. */
function walkthroughBlocks(readme: string): string[] {
  const a = readme.indexOf("<!-- walkthrough:start -->");
  const b = readme.indexOf("<!-- walkthrough:end -->");
  if (a < 0 || b < a) throw new Error("README.md has no walk-through markers");
  return [...readme.slice(a, b).matchAll(/^```bash\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

const dataDir = mkdtempSync(join(tmpdir(), "jobline-readme-"));
const procs = new Set<ChildProcess>();
let env: NodeJS.ProcessEnv = {};
let url = "";
let startLog = "";
let server: ChildProcess | undefined;

function spawnTracked(cmd: string, args: string[], extra: NodeJS.ProcessEnv, input?: string) {
  // Own process group, so the group (npx and the node it runs) can be signalled by pid.
  const p = spawn(cmd, args, { cwd: ROOT, env: { ...env, ...extra }, stdio: ["pipe", "pipe", "pipe"], detached: true });
  procs.add(p);
  p.once("exit", () => procs.delete(p));
  let out = "";
  p.stdout!.on("data", (d: Buffer) => (out += d));
  p.stderr!.on("data", (d: Buffer) => (out += d));
  p.stdin!.end(input ?? "");
  const exited = new Promise<number | null>((r) => p.once("exit", (code) => r(code)));
  return { p, output: () => out, exited };
}

/** The bash script's group (npx and what it runs); the server by its own pid, so it stops its PostgreSQL itself. */
function killGroup(p: ChildProcess, signal: NodeJS.Signals) {
  try {
    process.kill(p === server ? p.pid! : -p.pid!, signal);
  } catch {
    // already gone
  }
}

beforeAll(async () => {
  const port = await freePort();
  const { DATABASE_URL: _d, JOBLINE_URL: _u, JOBLINE_API_KEY: _k, ...rest } = process.env;
  env = { ...rest, JOBLINE_DATA_DIR: dataDir, HOST: "127.0.0.1", PORT: String(port), LOG_FORMAT: "json" };
  url = `http://127.0.0.1:${port}`;
  // The handlers example of the README runs in this server too (its queue is not the walk-through's).
  const start = spawnTracked(process.execPath, ["bin/jobline.js", "start"], { JOBLINE_HANDLERS_MODULE: "./examples/handlers.mjs" });
  server = start.p;
  await until(
    "jobline start /readyz",
    async () => {
      startLog = start.output();
      if (start.p.exitCode !== null) throw new Error(`jobline start exited:\n${startLog}`);
      return (await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false)) || undefined;
    },
    150_000,
    200,
  );
}, 180_000);

afterAll(async () => {
  for (const p of procs) {
    const gone = new Promise((r) => p.once("exit", r));
    killGroup(p, "SIGTERM");
    const t = setTimeout(() => killGroup(p, "SIGKILL"), 20_000);
    await gone;
    clearTimeout(t);
  }
  stopLeftoverPostgres(dataDir);
  rmSync(dataDir, { recursive: true, force: true });
}, 60_000);

describe("README walk-through", () => {
  it("the two commands are the README's, and npm start is `jobline start`", () => {
    expect(README).toContain("npm install && npm start");
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string> };
    expect(pkg.scripts.start).toBe("node bin/jobline.js start");
    // .ci/run runs `npm test`; the README names that command.
    expect(readFileSync(join(ROOT, ".ci", "run"), "utf8")).toContain("npm test --");
    expect(README).toMatch(/```sh\nnpm test\n```/);
  });

  it("prints the first admin key at the first start, and the key works", async () => {
    const key = /created the first admin API key[^"]*: (jl_[A-Za-z0-9_-]+)/.exec(startLog)?.[1];
    expect(key, startLog).toBeDefined();
    expect((await fetch(`${url}/v1/jobs?limit=1`, { headers: { authorization: `Bearer ${key}` } })).status).toBe(200);
  });

  it("runs every walk-through block in bash, each step succeeding, and the job ends succeeded", async () => {
    const blocks = walkthroughBlocks(README);
    expect(blocks.length).toBeGreaterThanOrEqual(4);
    expect(blocks[0]).toContain(README_URL);
    // The only change: the port this test's server listens on.
    const steps = blocks.map((b) => b.replace(README_URL, `URL=${url}`));
    const script = [
      "set -euo pipefail",
      ...steps.map((s, i) => `${s}\necho "__step ${i} ok__"`),
      'echo "__ID__=$ID"',
      'echo "__CLIENT__=$CLIENT"',
      "",
    ].join("\n");
    const bash = spawnTracked("bash", ["-s"], {}, script);
    const timer = setTimeout(() => killGroup(bash.p, "SIGKILL"), 240_000);
    const code = await bash.exited;
    clearTimeout(timer);
    const out = bash.output();
    for (const [i, s] of steps.entries()) expect(out, `step ${i} failed:\n${s}\n--- output:\n${out}`).toContain(`__step ${i} ok__`);
    expect(code, out).toBe(0);

    const id = /__ID__=(\S+)/.exec(out)![1]!;
    const client = /__CLIENT__=(\S+)/.exec(out)![1]!;
    const job = (await (await fetch(`${url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${client}` } })).json()) as Record<string, unknown>;
    expect(job).toMatchObject({ id, tenant: "acme", queue: "emails", status: "succeeded", result: { sent: true }, attempts: 1 });

    // The in-process handlers example (JOBLINE_HANDLERS_MODULE=./examples/handlers.mjs) runs the README's job.
    const r = await fetch(`${url}/v1/jobs`, {
      method: "POST",
      headers: { authorization: `Bearer ${client}`, "content-type": "application/json" },
      body: JSON.stringify({ queue: "thumbnails", kind: "resize", payload: { url: "a.png" } }),
    });
    expect(r.status).toBe(201);
    const { id: thumb } = (await r.json()) as { id: string };
    const done = await until(
      "thumbnails job done",
      async () => {
        const j = (await (await fetch(`${url}/v1/jobs/${thumb}`, { headers: { authorization: `Bearer ${client}` } })).json()) as {
          status: string;
          result: unknown;
        };
        return j.status === "queued" || j.status === "running" ? undefined : j;
      },
      60_000,
      200,
    );
    expect(done).toMatchObject({ status: "succeeded", result: { resized: "a.png", width: 128 } });
  }, 300_000);
});
