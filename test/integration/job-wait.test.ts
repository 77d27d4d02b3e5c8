import { describe, expect, it } from "vitest";
import { testConfig } from "../../src/config.js";
import { createContainer } from "../../src/container.js";
import { claimDirect, submitJob, useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

// GET /v1/jobs/{id}?waitMs= (DESIGN.md "Operator control and visibility"): answered when the job
// finishes, woken by LISTEN/NOTIFY, never a query per waiting request. The sweep (the backstop for
// finalisations that announce no ids) is set to a minute here, so only the announcement can wake a wait.
const t = useTestEnv("job_wait", { JOBLINE_WAIT_SWEEP_MS: 60_000, JOBLINE_DB_POOL_MAX: 10, JOBLINE_MAX_CONNECTIONS: 5000 }, { listen: true });
const svc = () => t.env.c.services.jobs;
const base = () => {
  const a = t.env.app.server.address();
  return `http://127.0.0.1:${typeof a === "object" && a ? a.port : 0}`;
};
const getWait = (id: string, waitMs: number, key = t.client) =>
  fetch(`${base()}/v1/jobs/${id}?waitMs=${waitMs}`, { headers: { authorization: key } }).then(async (r) => ({ status: r.status, body: (await r.json()) as { status: string } }));

/** As the SDK's wait(): a wait that ended unfinished (registration of all 1,000 outlasted 30 s on a loaded machine) is sent again. */
async function waitFinished(id: string) {
  for (let i = 0; ; i++) {
    const a = await getWait(id, 30_000);
    if (a.status !== 200 || a.body.status === "succeeded" || i === 3) return a;
  }
}

const claimOne = async (queue: string) => (await claimDirect(t.env, queue))[0]!;

describe("GET /v1/jobs/{id}?waitMs=", () => {
  it("1,000 concurrent waiters hold one listener and the pool, not 1,000 connections, and all return promptly on completion", async () => {
    const { id } = await submitJob(t.env, t.client, { queue: "w1", kind: "k" });
    const job = await claimOne("w1");
    const started = Date.now();
    // The longest wait there is: on a loaded machine registering 1,000 requests (each one key
    // check and one read) has taken over 25 s, and the first must still be waiting then.
    // Sent 100 at a time, each hundred once the last is waiting (a re-sent wait counts once it is
    // back): 1,000 connection attempts at
    // once overflow the listen backlog of a loaded machine (ECONNRESET), which is not under test.
    const waits: Array<ReturnType<typeof getWait>> = [];
    for (let n = 100; n <= 1000; n += 100) {
      for (let i = 0; i < 100; i++) waits.push(waitFinished(id));
      await until(`${n} waiting`, () => (t.env.c.finishedWaits.waiting === n ? true : undefined), 20_000);
    }
    // What the database sees of this app while they wait: its pool (at most 10) and one LISTEN connection.
    const backends = await t.env.c.sql<{ listening: number; total: number }[]>`
      SELECT count(*) FILTER (WHERE query ILIKE 'listen%')::int AS listening, count(*)::int AS total
      FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`;
    expect(backends[0]!.listening).toBe(1);
    expect(backends[0]!.total).toBeLessThanOrEqual(11);
    const doneAt = Date.now();
    expect((await svc().complete(id, null, job.leaseToken!, { ok: 1 })).ok).toBe(true);
    const answers = await Promise.all(waits);
    const took = Date.now() - doneAt;
    expect(answers.filter((a) => a.status !== 200 || a.body.status !== "succeeded")).toEqual([]);
    // Woken by the announcement, well before the waits end or the 60 s sweep (generous for a loaded machine).
    expect(took).toBeLessThan(15_000);
    console.log(`1,000 waiters: registered in ${doneAt - started} ms, all answered ${took} ms after the completion`);
  }, 120_000);

  it("a finalisation in another process wakes the waiter through NOTIFY", async () => {
    const { id } = await submitJob(t.env, t.client, { queue: "w2", kind: "k" });
    const other = createContainer(testConfig(), t.env.url, { application: "other" });
    try {
      const job = await claimOne("w2");
      const wait = getWait(id, 25_000);
      await until("waiting", () => (t.env.c.finishedWaits.waiting === 1 ? true : undefined));
      const at = Date.now();
      const out = await other.services.jobs.fail(id, null, { leaseToken: job.leaseToken!, error: { message: "no" }, retryable: false });
      expect(out.ok).toBe(true);
      const a = await wait;
      expect(a.body.status).toBe("failed");
      expect(Date.now() - at).toBeLessThan(15_000);
    } finally {
      await other.close();
    }
  }, 60_000);

  it("a wait on an unfinished job answers the job as it is after waitMs; a finished job at once", async () => {
    const { id } = await submitJob(t.env, t.client, { queue: "w3", kind: "k" });
    const at = Date.now();
    const a = await getWait(id, 700);
    expect(Date.now() - at).toBeGreaterThanOrEqual(650);
    expect(a).toMatchObject({ status: 200, body: { status: "queued" } });
    expect(t.env.c.finishedWaits.waiting).toBe(0);
    const job = await claimOne("w3");
    await svc().complete(id, null, job.leaseToken!, null);
    const b = await getWait(id, 20_000);
    expect(b.body.status).toBe("succeeded");
  }, 30_000);

  it("404 for another tenant's job, 400 beyond 30000", async () => {
    const { id } = await submitJob(t.env, t.client, { queue: "w4", kind: "k" });
    const other = await t.env.key("other", "client");
    expect((await getWait(id, 1000, other)).status).toBe(404);
    const r = await t.env.http().get(`/v1/jobs/${id}?waitMs=30001`).set("authorization", t.client);
    expect(r.status).toBe(400);
    expect(t.env.c.finishedWaits.waiting).toBe(0);
  });
});
