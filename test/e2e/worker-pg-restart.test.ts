import { beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { testConfig } from "../../src/config.js";
import { createContainer } from "../../src/container.js";
import { useJobline } from "./helpers/useJobline.js";
import { api, type Jobline, until } from "./helpers/util.js";

/**
 * PostgreSQL stopped and started again under load. This file runs its own
 * embedded server (own data directory and port), so stopping it does not
 * touch the server the other test files share.
 */

const t = useJobline("restart", { ownPostgres: true });
let apiProc: Jobline;
let workerProc: Jobline;
let client = "";
let worker = "";

beforeAll(async () => {
  const env = {
    JOBLINE_REAPER_INTERVAL_MS: "500",
    JOBLINE_HANDLERS_MODULE: "./test/e2e/helpers/crash-handlers.ts",
    CRASH_LEASE_SECONDS: "30",
  };
  [apiProc, workerProc] = await Promise.all([t.start("serve", env), t.start("worker", env)]);
  client = await t.key(apiProc, "pgr", "client");
  worker = await t.key(apiProc, "pgr", "worker");
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ready = async () => (await fetch(`${apiProc.url}/readyz`)).status;

describe("PostgreSQL restarted while clients submit and workers claim", () => {
  it("reports not-ready while down, answers 503 problem+json (never 500), recovers without a restart, loses no acknowledged submit", async () => {
    // What the processes said is the only trace of how one of them failed.
    onTestFailed(() => {
      for (const p of [apiProc, workerProc])
        console.error(`pid ${p.pid} (exit ${p.child.exitCode ?? p.child.signalCode ?? "none"}):\n${p.output().slice(-4000)}`);
    });
    const acked = new Set<string>();
    const statuses = new Map<string, number>();
    const unexpected: string[] = [];
    const note = (what: string, status: number, contentType: string | null, body: unknown) => {
      const k = `${what} ${status}`;
      statuses.set(k, (statuses.get(k) ?? 0) + 1);
      const ok = status < 300 || (status === 503 && contentType?.startsWith("application/problem+json"));
      if (!ok && unexpected.length < 20) unexpected.push(`${what} → ${status} ${JSON.stringify(body)}`);
    };
    let running = true;

    const submitter = async (i: number) => {
      for (let n = 0; running; n++) {
        const r = await api(apiProc.url, client, "POST", "/v1/jobs", { queue: "crash", kind: "slow", payload: { ms: 1, i, n } });
        note("submit", r.status, r.headers.get("content-type"), r.body);
        if (r.status === 201) acked.add(r.body.id);
        await sleep(5);
      }
    };
    // HTTP workers next to the in-process ones of the worker process.
    const poller = async () => {
      while (running) {
        const r = await api(apiProc.url, worker, "POST", "/v1/process-next", { queues: ["crash"], workerId: "poller", max: 5, waitMs: 500 });
        note("process-next", r.status, r.headers.get("content-type"), r.body);
        if (r.status !== 200) {
          await sleep(50);
          continue;
        }
        for (const j of r.body.jobs as Array<{ id: string; leaseToken: string }>) {
          // Retried through the outage: complete is idempotent for the lease holder.
          for (;;) {
            const c = await api(apiProc.url, worker, "POST", `/v1/jobs/${j.id}/complete`, { leaseToken: j.leaseToken, result: { by: "poller" } });
            note("complete", c.status, c.headers.get("content-type"), c.body);
            if (c.status !== 503) break;
            await sleep(100);
          }
        }
      }
    };
    const load = [0, 1, 2, 3].map(submitter).concat([poller(), poller()]);

    await until("some acknowledged submits", () => (acked.size >= 100 ? true : undefined));
    await t.pg.stop();
    const stoppedAt = Date.now();
    await until("/readyz 503", async () => ((await ready()) === 503 ? true : undefined), 15_000);
    const during = await api(apiProc.url, client, "GET", `/v1/jobs/${[...acked][0]}`);
    expect(during.status).toBe(503);
    expect(during.headers.get("content-type")).toMatch(/^application\/problem\+json/);
    expect(during.body).toMatchObject({ status: 503, code: "unavailable" });
    const ackedBeforeRestart = acked.size;
    await sleep(1500);

    await t.pg.start();
    await until("/readyz 200 again", async () => ((await ready()) === 200 ? true : undefined), 30_000, 100);
    const downMs = Date.now() - stoppedAt;
    await until("new acknowledged submits after the restart", () => (acked.size >= ackedBeforeRestart + 100 ? true : undefined), 30_000);
    running = false;
    await Promise.all(load);

    console.log(`PostgreSQL down ~${downMs} ms; responses: ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`);
    // On failure, the API's own account of the errors it could not classify.
    if (unexpected.length > 0) console.log(apiProc.output().split("\n").filter((l) => l.includes('"unhandled error"')).slice(0, 3).join("\n"));
    expect(unexpected).toEqual([]);
    // Neither process was restarted.
    expect([apiProc.child.exitCode, workerProc.child.exitCode]).toEqual([null, null]);
    expect(statuses.get("submit 503") ?? 0).toBeGreaterThan(0);

    const ids = [...acked];
    const [found] = await t.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE id = ANY(${ids}::uuid[])`;
    expect(found!.n).toBe(ids.length);
    // The worker process recovered too: it (or the pollers) finish everything, nothing is stuck.
    await until(
      "every job finished",
      async () => {
        const [r] = await t.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE status <> 'succeeded'`;
        return r!.n === 0 ? true : undefined;
      },
      60_000,
      200,
    );
    const [dup] = await t.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE attempts > 1`;
    console.log(`${ids.length} acknowledged submits, all present and succeeded; ${dup!.n} needed a second attempt (lease expired during the outage)`);

    // The API process's LISTEN is back too: a long poll there is woken by a submit from another
    // process (this one) rather than by its periodic re-check.
    const other = createContainer(testConfig(), t.databaseUrl);
    const samples: number[] = [];
    try {
      for (let i = 0; i < 10; i++) {
        const p = api(apiProc.url, worker, "POST", "/v1/process-next", { queues: [`after-${i}`], workerId: "after", waitMs: 10_000 });
        await sleep(20);
        const t0 = performance.now();
        expect((await other.services.jobs.submit("pgr", { queue: `after-${i}`, kind: "k", payload: null })).ok).toBe(true);
        expect((await p).body.jobs).toHaveLength(1);
        samples.push(performance.now() - t0);
      }
    } finally {
      await other.close();
    }
    samples.sort((a, b) => a - b);
    console.log(`long-poll wake-up after the restart: median ${samples[5]!.toFixed(1)} ms`);
    expect(samples[5]).toBeLessThan(300);
  });
});
