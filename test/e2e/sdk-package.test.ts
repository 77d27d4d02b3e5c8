import { execFile } from "node:child_process";
import { cp, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useTestEnv } from "../helpers/app.js";
import { ROOT } from "./helpers/processes.js";

/**
 * The SDK as a user installs it: `npm pack` of clients/typescript (which builds it), unpacked
 * into a project of its own, type-checked against the packed declarations, and run against a
 * listening API. Catches a package that imports files it does not ship, or ships no types.
 */

const run = promisify(execFile);
const SDK = join(ROOT, "clients/typescript");

const setup = useTestEnv("sdk_package", {}, { listen: true });
let dir = "";
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "jobline-sdk-"));
});
afterAll(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe("the packed SDK", () => {
  it("installs, type-checks and runs a worker from its tarball alone", async () => {
    const packed = await run("npm", ["pack", "--json", "--pack-destination", dir], { cwd: SDK, maxBuffer: 16 << 20 });
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as Array<{ filename: string; files: Array<{ path: string }> }>;
    const files = info!.files.map((f) => f.path);
    expect(files).toEqual(expect.arrayContaining(["dist/index.js", "dist/index.d.ts", "dist/worker.js", "dist/client.js", "dist/jobline.js", "package.json"]));

    // A project of its own: the package unpacked where npm would put it, its one dependency beside it.
    const app = join(dir, "app");
    const pkg = join(app, "node_modules/@jobline/client");
    await mkdir(pkg, { recursive: true });
    await run("tar", ["-xzf", join(dir, info!.filename), "-C", pkg, "--strip-components=1"]);
    await symlink(join(ROOT, "node_modules/openapi-fetch"), join(app, "node_modules/openapi-fetch"), "dir");
    await writeFile(join(app, "package.json"), JSON.stringify({ name: "app", type: "module", private: true }));
    expect((await readdir(pkg)).sort()).toEqual(["README.md", "dist", "package.json", "src"]);

    const program = `
import { createJoblineClient, runHttpWorker, unwrap, type Job } from "@jobline/client";

const baseUrl = process.env.BASE_URL!;
const client = createJoblineClient({ baseUrl, apiKey: process.env.CLIENT_KEY! });
const ids: string[] = [];
for (let i = 0; i < 3; i++) {
  const job: Job = await unwrap(client.POST("/v1/jobs", { body: { queue: "packed", kind: "double", payload: { n: i } } }));
  ids.push(job.id);
}
const stop = new AbortController();
const worker = runHttpWorker({
  baseUrl, apiKey: process.env.WORKER_KEY!, queues: ["packed"], concurrency: 2, waitMs: 1000, signal: stop.signal,
  handlers: { double: async (job) => ({ doubled: 2 * (job.payload as { n: number }).n }) },
});
const deadline = Date.now() + 20_000;
let jobs: Job[] = [];
while (Date.now() < deadline) {
  jobs = await Promise.all(ids.map((id) => unwrap(client.GET("/v1/jobs/{id}", { params: { path: { id } } }))));
  if (jobs.every((j) => j.status === "succeeded")) break;
  await new Promise((r) => setTimeout(r, 50));
}
stop.abort();
const stats = await worker;
console.log(JSON.stringify({ results: jobs.map((j) => [j.status, j.result]), succeeded: stats.succeeded }));
`;
    await writeFile(join(app, "main.ts"), program);
    // The user's Node typings are not the SDK's business: the program declares the one thing it uses.
    await writeFile(join(app, "env.d.ts"), "declare const process: { env: Record<string, string | undefined> };\n");
    // skipLibCheck off, so the package's own declaration files are checked as well.
    const compilerOptions = { target: "ES2022", module: "NodeNext", moduleResolution: "NodeNext", strict: true, skipLibCheck: false, lib: ["ES2024", "DOM"], types: [], outDir: "out" };
    await writeFile(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions, files: ["main.ts", "env.d.ts"] }));
    const tsc = join(ROOT, "node_modules/typescript/bin/tsc");
    const listed = await run(process.execPath, [tsc, "-p", "tsconfig.json", "--listFiles"], { cwd: app });
    expect(listed.stdout).toContain("node_modules/@jobline/client/dist/index.d.ts");

    // And it runs, on plain Node, from the emitted JavaScript.
    const out = await run(process.execPath, [join(app, "out/main.js")], {
      cwd: app,
      env: { ...process.env, BASE_URL: setup.base, CLIENT_KEY: setup.client.slice(7), WORKER_KEY: setup.worker.slice(7) },
      timeout: 30_000,
    });
    expect(JSON.parse(out.stdout)).toEqual({
      results: [
        ["succeeded", { doubled: 0 }],
        ["succeeded", { doubled: 2 }],
        ["succeeded", { doubled: 4 }],
      ],
      succeeded: 3,
    });
  }, 120_000);

  it("packs from a fresh copy of the package folder alone (no install ran there or above it)", async () => {
    // Outside the repository, so neither the root node_modules nor its typescript is in reach.
    const fresh = join(dir, "fresh");
    await cp(SDK, fresh, { recursive: true, filter: (src) => !/[/\\](node_modules|dist)$/.test(src) && !src.endsWith(".tgz") });
    expect((await readdir(fresh)).sort()).toEqual(["README.md", "package.json", "scripts", "src", "tsconfig.json"]);
    const packed = await run("npm", ["pack", "--json", "--prefer-offline"], { cwd: fresh, maxBuffer: 16 << 20, timeout: 240_000 });
    const [info] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf("["))) as Array<{ files: Array<{ path: string }> }>;
    expect(info!.files.map((f) => f.path)).toEqual(expect.arrayContaining(["dist/index.js", "dist/index.d.ts", "dist/jobline.js", "dist/jobline.d.ts"]));
  }, 300_000);
});
