import { readFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { until } from "../helpers/until.js";
import { useEmbeddedStart } from "./helpers/embeddedStart.js";
import { type ChildEnv, ROOT, spawnChild } from "./helpers/processes.js";

// The README's walk-through, taken from README.md itself, pasted into bash against a real
// `jobline start` (what `npm start` runs) on a fresh data directory and port, as on a fresh clone.
const README = readFileSync(join(ROOT, "README.md"), "utf8");
const README_URL = "URL=http://127.0.0.1:8080";

/** The ```bash blocks between the walk-through markers, in order. */
function walkthroughBlocks(readme: string): string[] {
  const a = readme.indexOf("<!-- walkthrough:start -->");
  const b = readme.indexOf("<!-- walkthrough:end -->");
  if (a < 0 || b < a) throw new Error("README.md has no walk-through markers");
  return [...readme.slice(a, b).matchAll(/^```bash\n([\s\S]*?)^```$/gm)].map((m) => m[1]!);
}

// The server is stopped by its own pid after the file, so it stops its PostgreSQL itself; a bash script with its group.
const embedded = useEmbeddedStart("jobline-readme-");
// As on a fresh clone: no database, server or key from the test run's environment; default log level.
const env: ChildEnv = {
  ...embedded.env,
  JOBLINE_URL: undefined,
  JOBLINE_API_KEY: undefined,
  LOG_LEVEL: process.env.LOG_LEVEL,
  LOG_FORMAT: "json",
};
let url = "";
let startLog = "";

beforeAll(async () => {
  // The handlers example of the README runs in this server too (its queue is not the walk-through's).
  const start = await embedded.start({ ...env, JOBLINE_HANDLERS_MODULE: "./examples/handlers.mjs" }, { readyMs: 150_000 });
  url = start.url;
  startLog = start.output();
}, 180_000);

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
    // Own process group (npx and the node it runs), signalled as a whole.
    const bash = spawnChild(["-s"], { ...env, HOST: "127.0.0.1", PORT: new URL(url).port }, { command: "bash", group: true, input: script });
    const timer = setTimeout(() => bash.signal("SIGKILL"), 240_000);
    const { code } = await bash.exited;
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
