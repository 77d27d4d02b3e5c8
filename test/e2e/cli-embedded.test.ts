import { existsSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { useEmbeddedStart } from "./helpers/embeddedStart.js";
import { type Jobline, runCli, settle } from "./helpers/processes.js";

// `jobline start` without DATABASE_URL owns an embedded PostgreSQL in JOBLINE_DATA_DIR; the
// one-shot commands run with the same environment must use it, not start a second one.
const embedded = useEmbeddedStart("jobline-cli-embedded-");
const dataDir = embedded.dir;
const own = { ...embedded.env, JOBLINE_REAPER_INTERVAL_MS: "1000" };
let start: Jobline;
let url = "";

const cli = (args: string[]) => runCli(args, { ...own, PORT: new URL(url).port }, { timeout: 120_000 });

beforeAll(async () => {
  start = await embedded.start(own);
  url = start.url;
}, 180_000);

describe("the CLI beside a running `jobline start` on the same data directory", () => {
  it("keys create writes through the running embedded server, and the key works", async () => {
    const out = await settle(cli(["keys", "create", "--tenant", "side", "--role", "client"]));
    expect(out.stderr).not.toContain("undefined");
    expect(out.code, out.stderr).toBe(0);
    expect(out.stderr).toContain("already running");
    const k = JSON.parse(out.stdout) as { key: string; tenant: string };
    expect(k.tenant).toBe("side");
    const r = await fetch(`${url}/v1/jobs?limit=1`, { headers: { authorization: `Bearer ${k.key}` } });
    expect(r.status).toBe(200);
  });

  it("migrate applies through the running embedded server", async () => {
    const out = await settle(cli(["migrate"]));
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).toContain("migrations applied");
    // The server still answers: migrate did not stop its PostgreSQL.
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it("a second start says jobline is already running, with the first one's pid", async () => {
    const out = await settle(cli(["start"]));
    expect(out.code).toBe(1);
    // `start` logs through pino, so its fatal line is on stdout (one log stream).
    const said = out.stdout + out.stderr;
    expect(said).toContain("already running");
    expect(said).toContain(String(start.pid));
    expect(said).not.toContain("undefined");
    expect((await fetch(`${url}/readyz`)).status).toBe(200);
  });

  it("start forgets its record when it stops", async () => {
    expect(existsSync(join(dataDir, "jobline.pid"))).toBe(true);
    start.signal("SIGTERM");
    expect((await start.exited).code).toBe(0);
    expect(existsSync(join(dataDir, "jobline.pid"))).toBe(false);
  });
});
