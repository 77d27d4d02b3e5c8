import { readFileSync } from "node:fs";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { startOwnPostgres } from "./helpers/ownPostgres.js";
import { api, type Child, killAll, startJobline, until } from "./helpers/util.js";

/**
 * Queue controls through PostgreSQL restarts (issue 25 point 4): capped queues drain with HTTP
 * pollers (through a `jobline serve`) and a `jobline worker`; mid-drain PostgreSQL is stopped
 * twice and started again on the same data directory: an immediate shutdown (SIGQUIT to its
 * postmaster, crash recovery on start), later a fast one (SIGINT). No limit is exceeded, every job finishes once (a lease lost
 * in the outage is requeued by the reaper and run again), and the queue's counts match the table.
 * Own PostgreSQL (own data directory and port): no other test file is touched.
 */

let pg: Awaited<ReturnType<typeof startOwnPostgres>> | undefined;
let apiProc: Child & { url: string };
let workerProc: Child & { url: string };
const bootstrap = randomBytes(16).toString("hex");
let admin = "";
let worker = "";

const CONC = 3;
const RC_JOBS = 300;
const KEYS = 8;
const PER_KEY = 25;

beforeAll(async () => {
  pg = await startOwnPostgres("jobline-qc-restart-pg-");
  const env = { JOBLINE_BOOTSTRAP_KEY: bootstrap, JOBLINE_REAPER_INTERVAL_MS: "500", JOBLINE_HANDLERS_MODULE: "./test/helpers/qc-restart-handlers.ts" };
  apiProc = await startJobline("serve", pg.url, env);
  admin = (await api(apiProc.url, bootstrap, "POST", "/v1/api-keys", { tenant: "qcr", roles: ["admin"] })).body.key;
  worker = (await api(apiProc.url, bootstrap, "POST", "/v1/api-keys", { tenant: "qcr", roles: ["worker"] })).body.key;
  expect((await api(apiProc.url, admin, "PUT", "/v1/queues/rc", { concurrency: CONC })).status).toBe(200);
  expect((await api(apiProc.url, admin, "PUT", "/v1/queues/rg", { groupConcurrency: 1 })).status).toBe(200);
  const rc = Array.from({ length: RC_JOBS }, (_, i) => ({ queue: "rc", kind: "work", payload: { i } }));
  const rg = Array.from({ length: KEYS * PER_KEY }, (_, i) => ({ queue: "rg", kind: "work", payload: { n: Math.floor(i / KEYS) }, groupKey: `k${i % KEYS}` }));
  for (const jobs of [rc, rg]) expect((await api(apiProc.url, admin, "POST", "/v1/batches", { jobs })).status).toBe(201);
  // Started after the submits: it claims at once.
  workerProc = await startJobline("worker", pg.url, env);
}, 120_000);
afterAll(async () => {
  try {
    await killAll();
  } finally {
    await pg?.destroy();
  }
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Immediate shutdown: SIGQUIT to the postmaster that postmaster.pid names; resolves when it is gone. */
async function crashPostgres(dataDir: string) {
  const pid = Number(readFileSync(join(dataDir, "postmaster.pid"), "utf8").split("\n")[0]);
  process.kill(pid, "SIGQUIT");
  await until(
    `postmaster ${pid} gone`,
    () => {
      try {
        process.kill(pid, 0);
        return undefined;
      } catch {
        return true;
      }
    },
    30_000,
    20,
  );
}

describe("queue controls through PostgreSQL restarts (immediate, then fast shutdown)", () => {
  it("no limit exceeded before, during or after; every job finishes once; counts match the jobs table", async () => {
    onTestFailed(() => {
      for (const p of [apiProc, workerProc]) console.error(`pid ${p.pid}:\n${p.output().slice(-3000)}`);
    });
    const db = postgres(pg!.url, { max: 1, onnotice: () => {}, connect_timeout: 2 });
    const dataDir = (await db<{ d: string }[]>`SELECT current_setting('data_directory') AS d`)[0]!.d;

    // Running counts straight from the table, between the restarts (errors while it is down).
    let phase: "before" | "afterCrash" | "afterFast" = "before";
    const seen = { before: { rc: 0, rg: 0, n: 0 }, afterCrash: { rc: 0, rg: 0, n: 0 }, afterFast: { rc: 0, rg: 0, n: 0 } };
    let sampling = true;
    const sampler = (async () => {
      while (sampling) {
        try {
          const [r] = await db<{ rc: number; rg: number }[]>`
            SELECT (SELECT count(*) FROM jobs WHERE queue = 'rc' AND status = 'running')::int AS rc,
                   (SELECT coalesce(max(c), 0) FROM (SELECT count(*) AS c FROM jobs WHERE queue = 'rg' AND status = 'running' GROUP BY group_key) x)::int AS rg`;
          const s = seen[phase];
          s.rc = Math.max(s.rc, r!.rc);
          s.rg = Math.max(s.rg, r!.rg);
          s.n++;
        } catch {
          await sleep(50);
        }
      }
    })();

    // HTTP pollers: a complete the outage refused is repeated (idempotent for the lease holder);
    // 409 (lease_lost, or not_running while requeued) means the reaper took the job back after
    // its lease ran out.
    const statuses = new Map<string, number>();
    const unexpected: string[] = [];
    const completedBy = new Map<string, number>();
    const lostLeases = new Set<string>();
    const wonLeases = new Set<string>();
    const note = (what: string, r: { status: number; headers: Headers; body: unknown }) => {
      const k = `${what} ${r.status}`;
      statuses.set(k, (statuses.get(k) ?? 0) + 1);
      const ok = r.status < 300 || (r.status === 503 && r.headers.get("content-type")?.startsWith("application/problem+json"));
      const lost = what === "complete" && r.status === 409 && ["lease_lost", "not_running"].includes((r.body as { code?: string })?.code ?? "");
      if (!ok && !lost && unexpected.length < 20) unexpected.push(`${what} → ${r.status} ${JSON.stringify(r.body)}`);
    };
    let polling = true;
    const poller = async (queue: string, i: number) => {
      while (polling) {
        const r = await api(apiProc.url, worker, "POST", "/v1/process-next", { queues: [queue], workerId: `p${i}`, max: 2, waitMs: 300, leaseSeconds: 5 });
        note("process-next", r);
        if (r.status !== 200) {
          await sleep(50);
          continue;
        }
        for (const j of r.body.jobs as Array<{ id: string; leaseToken: string }>) {
          await sleep(2 + Math.random() * 20);
          for (;;) {
            const c = await api(apiProc.url, worker, "POST", `/v1/jobs/${j.id}/complete`, { leaseToken: j.leaseToken, result: { by: "poller" } });
            note("complete", c);
            if (c.status === 200) {
              completedBy.set(j.id, (completedBy.get(j.id) ?? 0) + 1);
              wonLeases.add(j.leaseToken);
            } else if (c.status === 409) lostLeases.add(j.leaseToken);
            else if (c.status === 503) {
              await sleep(100);
              continue;
            }
            break;
          }
        }
      }
    };
    const pollers = [0, 1, 2, 3, 4, 5].map((i) => poller(i % 2 ? "rg" : "rc", i));

    // -1 while PostgreSQL is down or its connection is being replaced.
    const finished = () => db<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE status = 'succeeded'`.then((r) => r[0]!.n, () => -1);
    const total = RC_JOBS + KEYS * PER_KEY;
    await until("a quarter of the jobs finished", async () => ((await finished()) >= total / 4 ? true : undefined), 60_000, 50);
    const before = await finished();
    // A worker that dies in the outage: it holds an rc slot and never comes back. Only the
    // reaper, once its lease lapses, can return the slot (and the job, to run again).
    const ghost = await until(
      "a job for the ghost worker",
      async () => {
        const r = await api(apiProc.url, worker, "POST", "/v1/process-next", { queues: ["rc"], workerId: "ghost", max: 1, waitMs: 200, leaseSeconds: 5 });
        return r.status === 200 && r.body.jobs.length === 1 ? (r.body.jobs[0].id as string) : undefined;
      },
      30_000,
      10,
    );
    const sampled = (p: typeof phase) => until(`${p}: samples taken`, async () => (seen[p].n > 10 ? true : undefined), 30_000, 20);
    await sampled("before");
    await crashPostgres(dataDir);
    await sleep(1000);
    await pg!.start();
    phase = "afterCrash";
    await until("half of the jobs finished", async () => ((await finished()) >= total / 2 ? true : undefined), 60_000, 50);
    await sampled("afterCrash");
    const beforeFast = await finished();
    expect(beforeFast).toBeLessThan(total);
    await pg!.stop(); // fast shutdown: SIGINT to the postmaster, sessions terminated
    await sleep(1000);
    await pg!.start();
    phase = "afterFast";

    // Held still after the restart (paused, nothing running): the counts can be compared.
    // 503 until the server's pool has replaced its connections.
    for (const q of ["rc", "rg"])
      await until(`${q} paused`, async () => ((await api(apiProc.url, admin, "POST", `/v1/queues/${q}/pause`)).status === 200 ? true : undefined), 30_000, 100);
    const countsMatch = async (queue: string) => {
      // 503 (problem+json) still possible: the pause proved one of the pool's connections new, not every one.
      const r = await until(
        `GET ${queue}`,
        async () => {
          const x = await api(apiProc.url, admin, "GET", `/v1/queues/${queue}`);
          return x.status === 503 ? undefined : x;
        },
        30_000,
        100,
      );
      expect(r.status).toBe(200);
      const rows = await db<{ status: string; n: number }[]>`SELECT status::text, count(*)::int AS n FROM jobs WHERE queue = ${queue} GROUP BY status`;
      const table = Object.fromEntries(rows.map((x) => [x.status, x.n]));
      for (const [status, n] of Object.entries(r.body.counts as Record<string, number>)) expect(n, `${queue} ${status}`).toBe(table[status] ?? 0);
      return r.body.counts as { queued: number; running: number; succeeded: number };
    };
    await until(
      "nothing running in the paused queues (leases lost in the outage reaped)",
      async () => ((await db<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE status = 'running'`)[0]!.n === 0 ? true : undefined),
      60_000,
      100,
    );
    const paused = { rc: await countsMatch("rc"), rg: await countsMatch("rg") };
    expect(paused.rc.queued + paused.rg.queued).toBeGreaterThan(0);
    expect(paused.rc.running + paused.rg.running).toBe(0);

    for (const q of ["rc", "rg"]) expect((await api(apiProc.url, admin, "POST", `/v1/queues/${q}/resume`)).status).toBe(200);
    await until("every job finished", async () => ((await finished()) === total ? true : undefined), 120_000, 100);
    polling = false;
    await Promise.all(pollers);
    await sampled("afterFast");
    sampling = false;
    await sampler;

    const [attempts] = await db<{ again: number }[]>`SELECT count(*) FILTER (WHERE attempts > 1)::int AS again FROM jobs`;
    console.log(
      `succeeded before the crash ${before}/${total}, before the fast stop ${beforeFast}; samples ${JSON.stringify(seen)}; jobs run again after a lost lease ${attempts!.again}; ` +
        `poller completes lost to the reaper ${lostLeases.size}; responses ${JSON.stringify(Object.fromEntries([...statuses].sort()))}`,
    );
    expect(unexpected).toEqual([]);
    expect([apiProc.child.exitCode, workerProc.child.exitCode]).toEqual([null, null]);
    expect(seen.before.n).toBeGreaterThan(10);
    expect(seen.afterCrash.n).toBeGreaterThan(10);
    expect(seen.afterFast.n).toBeGreaterThan(10);
    for (const s of Object.values(seen)) {
      expect(s.rc).toBeLessThanOrEqual(CONC);
      expect(s.rg).toBeLessThanOrEqual(1);
    }
    // The caps were reached, so the bounds were tested. Not from recorded start and finish times:
    // a claim's started_at is the gate's time, taken after its lock but before the snapshot it
    // counts in, so a finish committed in between (up to ~11 ms seen after a restart) would look
    // like an overlap that the claim never saw.
    // After both restarts rc still fills its 3 slots: none was leaked.
    expect(seen.afterFast.rc).toBe(CONC);
    expect(Math.max(...Object.values(seen).map((s) => s.rg))).toBe(1);
    const [g] = await db<{ status: string; attempts: number; by: unknown }[]>`SELECT status::text, attempts, result AS by FROM jobs WHERE id = ${ghost}`;
    expect(g!.status).toBe("succeeded");
    expect(g!.attempts).toBeGreaterThanOrEqual(2);
    // Each job finished once, by one lease holder; a lease the reaper took back was refused.
    expect([...completedBy.values()].every((n) => n === 1)).toBe(true);
    for (const token of lostLeases) expect(wonLeases.has(token)).toBe(false);

    // The counts at rest match the table too.
    expect(await countsMatch("rc")).toMatchObject({ succeeded: RC_JOBS, queued: 0, running: 0 });
    expect(await countsMatch("rg")).toMatchObject({ succeeded: KEYS * PER_KEY, queued: 0, running: 0 });
    await db.end();
  }, 300_000);
});
