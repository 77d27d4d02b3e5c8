import { type ChildProcess, execFile, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { freePort } from "../../src/db/embedded.js";
import { createTestDatabase } from "../helpers/db.js";

const run = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");
const BIN = join(ROOT, "bin", "jobline.js");
const admin = `jl_cli_${randomBytes(16).toString("hex")}`;
let server: ChildProcess | undefined;
let env: NodeJS.ProcessEnv = {};
let drop: (() => Promise<void>) | undefined;

const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [BIN, ...args], { env: { ...env, ...extra }, timeout: 60_000 });

beforeAll(async () => {
  const db = await createTestDatabase("cli_workflows");
  drop = db.drop;
  const port = await freePort();
  env = { ...process.env, JOBLINE_URL: `http://127.0.0.1:${port}`, JOBLINE_API_KEY: admin, LOG_LEVEL: "warn" };
  server = spawn(process.execPath, [BIN, "serve"], {
    env: { ...env, DATABASE_URL: db.url, PORT: String(port), JOBLINE_BOOTSTRAP_KEY: admin },
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

// `jobline submit --depends-on / --depends-on-batches` (docs/cli.md, docs/workflows.md) through a running server.
type Job = { id: string; status: string; dependsOn: { jobs: string[]; batches: string[] } | null; pendingDependencies: number };
const api = async (method: string, path: string, body?: unknown) => {
  const r = await fetch(`${env.JOBLINE_URL}${path}`, {
    method,
    headers: { authorization: `Bearer ${admin}`, "content-type": "application/json" },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
};

describe("jobline submit --depends-on", () => {
  it("submits a job waiting on jobs and a batch; an unknown parent is a 404 with a non-zero exit", async () => {
    const a = JSON.parse((await cli(["submit", "--queue", "cliwf", "--kind", "a"])).stdout) as Job;
    const b = JSON.parse((await cli(["submit", "--queue", "cliwf", "--kind", "b"])).stdout) as Job;
    const batch = await api("POST", "/v1/batches", { jobs: [{ queue: "cliwf", kind: "c" }] });
    expect(batch.status, JSON.stringify(batch.body)).toBe(201);
    const batchId = batch.body.id as string;
    const out = await cli(["submit", "--queue", "cliwf2", "--kind", "d", "--depends-on", `${a.id}, ${b.id}`, "--depends-on-batches", batchId]);
    const d = JSON.parse(out.stdout) as Job;
    expect(d).toMatchObject({ status: "waiting", pendingDependencies: 3 });
    expect([...d.dependsOn!.jobs].sort()).toEqual([a.id, b.id].sort());
    expect(d.dependsOn!.batches).toEqual([batchId]);
    const dependents = await api("GET", `/v1/jobs/${a.id}/dependents`);
    expect((dependents.body.items as Job[]).map((j) => j.id)).toEqual([d.id]);
    await expect(cli(["submit", "--queue", "cliwf2", "--kind", "e", "--depends-on", "00000000-0000-4000-8000-000000000000"])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining("404"),
    });
  });
});
