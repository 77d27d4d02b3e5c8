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
let databaseUrl = "";
let drop: (() => Promise<void>) | undefined;

const cli = (args: string[], extra: NodeJS.ProcessEnv = {}) =>
  run(process.execPath, [BIN, ...args], { env: { ...env, ...extra }, timeout: 60_000 });

beforeAll(async () => {
  const db = await createTestDatabase("cli");
  drop = db.drop;
  databaseUrl = db.url;
  const port = await freePort();
  env = { ...process.env, JOBLINE_URL: `http://127.0.0.1:${port}`, JOBLINE_API_KEY: admin, LOG_LEVEL: "warn" };
  server = spawn(process.execPath, [BIN, "serve"], {
    env: { ...env, DATABASE_URL: db.url, PORT: String(port), JOBLINE_BOOTSTRAP_KEY: admin },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const deadline = Date.now() + 30_000;
  while (!(await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok).catch(() => false))) {
    if (Date.now() > deadline) throw new Error("server did not become ready");
    await new Promise((r) => setTimeout(r, 100));
  }
});

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

describe("jobline CLI", () => {
  it("submits, reads a job and lists queues through a running server", async () => {
    const sub = await cli(["submit", "--queue", "cliq", "--kind", "hello", "--payload", '{"snake_key":1}']);
    const job = JSON.parse(sub.stdout) as { id: string; status: string; payload: unknown };
    expect(job).toMatchObject({ status: "queued", payload: { snake_key: 1 } });
    const got = JSON.parse((await cli(["jobs", "get", job.id])).stdout) as { id: string };
    expect(got.id).toBe(job.id);
    const queues = JSON.parse((await cli(["queues"])).stdout) as { items: { queue: string; counts: { queued: number } }[] };
    expect(queues.items.find((q) => q.queue === "cliq")?.counts.queued).toBe(1);
    // A 404 is reported on stderr with a non-zero exit.
    await expect(cli(["jobs", "get", "00000000-0000-4000-8000-000000000000"])).rejects.toMatchObject({ code: 1 });
  });

  it("creates, lists, pauses, resumes and deletes a schedule", async () => {
    const created = JSON.parse(
      (await cli(["schedules", "create", "--name", "nightly", "--cron", "0 2 * * *", "--timezone", "Europe/Berlin", "--queue", "cliq", "--kind", "report", "--payload", '{"a":1}', "--overlap", "skip"])).stdout,
    ) as { id: string; nextRunAt: string; overlap: string; job: unknown; tenant: string };
    expect(created).toMatchObject({ overlap: "skip", job: { queue: "cliq", kind: "report", payload: { a: 1 } }, tenant: "default" });
    expect(JSON.parse((await cli(["schedules", "pause", created.id])).stdout)).toMatchObject({ paused: true, nextRunAt: null });
    const list = JSON.parse((await cli(["schedules", "list"])).stdout) as { items: Array<{ id: string; paused: boolean }>; nextCursor: string | null };
    expect(list.items.find((s) => s.id === created.id)?.paused).toBe(true);
    expect(JSON.parse((await cli(["schedules", "resume", created.id])).stdout)).toMatchObject({ paused: false, nextRunAt: created.nextRunAt });
    expect((await cli(["schedules", "delete", created.id])).stdout).toBe("");
    // A 404 is an HTTP error (exit 1); bad usage exits 2.
    await expect(cli(["schedules", "delete", created.id])).rejects.toMatchObject({ code: 1 });
    await expect(cli(["schedules", "create", "--name", "x"])).rejects.toMatchObject({ code: 2 });
  }, 300_000);

  it("creates a key directly in the database with keys create", async () => {
    const out = await cli(["keys", "create", "--tenant", "acme", "--role", "client"], { DATABASE_URL: databaseUrl });
    const k = JSON.parse(out.stdout) as { key: string; tenant: string; roles: string[] };
    expect(k).toMatchObject({ tenant: "acme", roles: ["client"] });
    const r = await fetch(`${env.JOBLINE_URL}/v1/jobs?limit=1`, { headers: { authorization: `Bearer ${k.key}` } });
    expect(r.status).toBe(200);
  });

  it("answers --help for every command and refuses bad usage with exit 2", async () => {
    for (const cmd of ["start", "serve", "worker", "migrate", "keys", "submit", "jobs", "queues", "schedules"]) {
      const out = await cli([cmd, "--help"]);
      expect(out.stdout).toContain(`jobline ${cmd}`);
    }
    await expect(cli(["submit", "--queue", "q"])).rejects.toMatchObject({ code: 2 });
    await expect(cli(["nope"])).rejects.toMatchObject({ code: 2 });
  });
});
