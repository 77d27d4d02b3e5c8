import { spawn } from "node:child_process";
import postgres from "postgres";
import { beforeAll, describe, expect, it } from "vitest";
import { jobsRepository, type JobRow, type NewJob } from "../../src/repositories/jobs.js";
import { queuesRepository } from "../../src/repositories/queues.js";
import { fullRow } from "../../src/repositories/jobs/rows.js";
import { toNewJob } from "../../src/services/jobs.js";
import { createSharedStatements } from "../../src/services/jobs/sharedStatements.js";
import type { Notifier } from "../../src/services/notifier.js";
import { createCappedQueues } from "../../src/services/queues/capped.js";
import { reapOnce } from "../../src/worker/reaper.js";
import { usePools, useTestEnv } from "../helpers/app.js";

// Queue controls under races (issue 25 point 6): 32 claimers, each on its own connection and
// with its own routing state (as 32 processes), against real PostgreSQL. Claimer connections
// commit with synchronous_commit off: the gate is held to commit, so with a ~15 ms fsync on a
// loaded machine a capped queue passes ~65 claims a second; visibility and locks are unchanged.
// The concurrency drain runs the 2,000 jobs with 0-4 ms of work and 5-40 ms idle sleeps
// (shorter sleeps only add empty claims competing for the 2 cores): ~45 s alone here.

const CLAIMERS = 32;
const TENANT = "acme";
const setup = useTestEnv("qc_races", { JOBLINE_REAPER_INTERVAL_MS: 600_000 });
const pool = usePools(setup);
const pools: postgres.Sql[] = [];
let admin: postgres.Sql;

beforeAll(() => {
  for (let i = 0; i < CLAIMERS; i++) pools.push(pool({ max: 1, transform: postgres.camel, connection: { synchronous_commit: "off" } }));
  admin = pool({ max: 2, transform: postgres.camel });
});

const quiet = { notify() {} } as unknown as Notifier;
/** Claimer i's own routing (free text first, gated once it learns the queue has settings), as a separate process would. */
// Claimers of different kinds walk to different candidates, so without the gate's lock two of
// them would take the last slot with different jobs (with one filter, SKIP LOCKED on the same
// head job would hide that). Every fourth claimer takes any kind.
const claimerOf = (i: number, kinds = false) => {
  const repo = jobsRepository(pools[i]!);
  const shared = createSharedStatements(pools[i]! as never, repo, createCappedQueues(queuesRepository(pools[i]!), quiet), setup.env.c.metrics);
  const kind = kinds && i % 4 !== 3 ? { kinds: [`k${i % 4}`] } : {};
  return { repo, claim: (queue: string, max: number) => shared.claimRouted({ queues: [queue], tenant: i % 2 ? TENANT : null, leaseSeconds: 600, ...kind }, [{ workerId: `w${i}`, max }]).then((r) => r[0]!.map(fullRow)) };
};
const insert = (jobs: NewJob[]) => setup.env.c.sql.begin((tx) => setup.env.c.repos.jobs.insertMany(jobs, tx));
const newJob = (queue: string, i: number, groupKey: string | null = null): NewJob =>
  toNewJob(TENANT, { queue, kind: `k${i % 3}`, payload: { i }, groupKey: groupKey ?? undefined });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Reads `sample()` in a loop on its own connection until stopped; returns the largest value seen. */
function sampler(sample: (q: postgres.Sql) => Promise<number>) {
  const conn = postgres(setup.env.url, { max: 1, onnotice: () => {} });
  let stop = false;
  let max = 0;
  let n = 0;
  const done = (async () => {
    while (!stop) {
      max = Math.max(max, await sample(conn));
      n++;
    }
  })();
  return {
    async stop() {
      stop = true;
      await done;
      await conn.end({ timeout: 5 });
      return { max, samples: n };
    },
  };
}

/**
 * Drains `queue` with all claimers: random 0-`workMs` ms of work (default 8), then complete (or
 * `fail` decides); an empty claim sleeps 5-`idleMs` ms (default 15) before the next.
 */
async function drain(
  queue: string,
  total: number,
  o: { fail?: (r: JobRow) => boolean; onStart?: (r: JobRow) => void; until?: () => boolean; kinds?: boolean; workMs?: number; idleMs?: number } = {},
) {
  let done = 0;
  const deadline = Date.now() + 240_000;
  await Promise.all(
    Array.from({ length: CLAIMERS }, async (_, i) => {
      const { repo, claim } = claimerOf(i, o.kinds);
      while (done < total && Date.now() < deadline && !(o.until?.() ?? false)) {
        const rows = await claim(queue, 1 + (i % 4));
        if (rows.length === 0) {
          await sleep(5 + Math.random() * ((o.idleMs ?? 15) - 5));
          continue;
        }
        for (const r of rows) o.onStart?.(r);
        await sleep(Math.random() * (o.workMs ?? 8));
        for (const r of rows) {
          if (o.fail?.(r)) {
            const f = await repo.failIfLeased(r.id, { leaseToken: r.leaseToken!, error: { message: "x" }, retryable: true, retryAfterSeconds: 0.03, backoffBaseMs: 1, backoffMaxMs: 1, jitter: 0, tenant: null });
            expect(f?.status).toBe("queued");
          } else {
            expect(await repo.completeIfLeased(r.id, r.leaseToken!, null, null)).not.toBeNull();
            done++;
          }
        }
      }
    }),
  );
  return done;
}

describe("queue controls under races", () => {
  it("concurrency 5: a sampler never sees more than 5 running; every job runs exactly once", async () => {
    const N = 2000;
    await queuesRepository(admin).replace("conc", TENANT, { paused: false, concurrency: 5, groupConcurrency: null, rateLimit: null, defaultTimeoutSeconds: null });
    await insert(Array.from({ length: N }, (_, i) => newJob("conc", i)));
    const s = sampler(async (q) => (await q`SELECT count(*)::int AS n FROM jobs WHERE queue = 'conc' AND status = 'running'`)[0]!.n);
    const starts = new Map<string, number>();
    expect(await drain("conc", N, { kinds: true, workMs: 4, idleMs: 40, onStart: (r) => starts.set(r.id, (starts.get(r.id) ?? 0) + 1) })).toBe(N);
    const seen = await s.stop();
    expect(seen.samples).toBeGreaterThan(100);
    expect(seen.max).toBeLessThanOrEqual(5);
    expect(seen.max).toBe(5); // the limit was reached, so the bound was tested
    expect(starts.size).toBe(N);
    expect([...starts.values()].every((n) => n === 1)).toBe(true);
    const [r] = await admin`SELECT count(*)::int AS n, count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1)::int AS ok FROM jobs WHERE queue = 'conc'`;
    expect(r).toEqual({ n: N, ok: N });
  }, 300_000);

  it("groupConcurrency 1 over 50 keys: never two running per key; each key's jobs start in submission order, a retry before the next", async () => {
    const KEYS = 50;
    const PER_KEY = 40;
    await queuesRepository(admin).replace("serial", TENANT, { paused: false, concurrency: null, groupConcurrency: 1, rateLimit: null, defaultTimeoutSeconds: null });
    // Submitted round-robin over the keys, so each key's jobs are interleaved with the others'.
    const jobs: NewJob[] = [];
    for (let n = 0; n < PER_KEY; n++) for (let k = 0; k < KEYS; k++) jobs.push(toNewJob(TENANT, { queue: "serial", kind: "k", payload: { n }, groupKey: `k${k}` }));
    await insert(jobs);
    const s = sampler(async (q) => (await q`SELECT coalesce(max(c), 0)::int AS n FROM (SELECT count(*) AS c FROM jobs WHERE queue = 'serial' AND status = 'running' GROUP BY group_key) x`)[0]!.n);
    const seq = new Map<string, number[]>();
    let failures = 0;
    const done = await drain("serial", KEYS * PER_KEY, {
      onStart: (r) => seq.set(r.groupKey!, [...(seq.get(r.groupKey!) ?? []), (r.payload as { n: number }).n]),
      fail: (r) => r.attempts === 1 && Math.random() < 0.05 && ++failures > 0,
    });
    const seen = await s.stop();
    expect(done).toBe(KEYS * PER_KEY);
    expect(failures).toBeGreaterThan(0);
    expect(seen.max).toBe(1);
    for (const [key, starts] of seq) {
      // n, then n again only when the attempt was retried, then n + 1: never back, never a skip.
      for (let i = 1; i < starts.length; i++) expect(starts[i]! - starts[i - 1]!, `${key}: ${starts.join(",")}`).toBeOneOf([0, 1]);
      expect(starts[starts.length - 1]).toBe(PER_KEY - 1);
    }
    expect(seq.size).toBe(KEYS);
  }, 300_000);

  it("rate limit 50 per 2 s over 500 jobs: no closed 2 s window of recorded start times holds more than 50", async () => {
    const N = 500;
    await queuesRepository(admin).replace("rate", TENANT, { paused: false, concurrency: null, groupConcurrency: null, rateLimit: { limit: 50, periodSeconds: 2 }, defaultTimeoutSeconds: null });
    await insert(Array.from({ length: N }, (_, i) => newJob("rate", i)));
    const t0 = Date.now();
    expect(await drain("rate", N)).toBe(N);
    const elapsed = Date.now() - t0;
    // As text: postgres.js would round a timestamptz to milliseconds.
    const rows = await admin<Array<{ us: string }>>`
      SELECT (extract(epoch FROM started_at) * 1000000)::bigint::text AS us FROM jobs WHERE queue = 'rate' ORDER BY started_at`;
    const t = rows.map((r) => Number(r.us));
    let most = 0;
    for (let i = 0, j = 0; i < t.length; i++) {
      while (t[i]! - t[j]! > 2_000_000) j++;
      most = Math.max(most, i - j + 1);
    }
    expect(most).toBe(50);
    expect(elapsed).toBeGreaterThanOrEqual(18_000 - 50);
  }, 300_000);

  for (const existing of [false, true]) {
    it(`pause during a drain (${existing ? "settings row existing" : "pause creates the row"}): no job starts after the pause commits; resume: the rest run`, async () => {
      const queue = existing ? "drain2" : "drain1";
      const N = 600;
      const repo = queuesRepository(admin);
      if (existing) await repo.replace(queue, TENANT, { paused: false, concurrency: 1000, groupConcurrency: null, rateLimit: null, defaultTimeoutSeconds: null });
      await insert(Array.from({ length: N }, (_, i) => newJob(queue, i)));
      let started = 0;
      let pausedAt = "";
      let resumed = false;
      const draining = drain(queue, N, { onStart: () => started++ });
      while (started < N / 4) await sleep(5);
      await repo.pause(queue, TENANT);
      pausedAt = (await admin<Array<{ t: string }>>`SELECT clock_timestamp()::text AS t`)[0]!.t;
      await sleep(1500);
      const [after] = await admin<Array<{ n: number; queued: number }>>`
        SELECT count(*) FILTER (WHERE started_at > ${pausedAt}::text::timestamptz)::int AS n,
               count(*) FILTER (WHERE status = 'queued')::int AS queued FROM jobs WHERE queue = ${queue}`;
      expect(after!.n).toBe(0);
      expect(after!.queued).toBeGreaterThan(0);
      await repo.resume(queue, TENANT);
      resumed = true;
      expect(await draining).toBe(N);
      expect(resumed).toBe(true);
      const [end] = await admin<Array<{ n: number }>>`SELECT count(*)::int AS n FROM jobs WHERE queue = ${queue} AND status = 'succeeded' AND attempts = 1`;
      expect(end!.n).toBe(N);
    }, 300_000);
  }

  it("kill -9 of a worker holding jobs: its slots stay taken until the reaper returns them; counts stay true after", async () => {
    await queuesRepository(admin).replace("killed", TENANT, { paused: false, concurrency: 3, groupConcurrency: 1, rateLimit: null, defaultTimeoutSeconds: null });
    await insert([newJob("killed", 0, "A"), newJob("killed", 1, "A"), newJob("killed", 2, "B"), newJob("killed", 3, "C"), newJob("killed", 4, "D")]);
    const child = spawn(process.execPath, ["--import", "tsx", "test/helpers/qc-claimer.ts", setup.env.url, "killed", "10"], { stdio: ["ignore", "pipe", "inherit"] });
    const held: string[] = await new Promise((resolve, reject) => {
      let out = "";
      child.stdout!.on("data", (d) => {
        out += String(d);
        if (out.includes("\n")) resolve(JSON.parse(out));
      });
      child.on("exit", (code) => reject(new Error(`claimer exited ${code}`)));
    });
    expect(held).toHaveLength(3); // A's head, B, C: concurrency 3
    process.kill(child.pid!, "SIGKILL");
    const { claim } = claimerOf(0);
    expect(await claim("killed", 10)).toEqual([]);
    await sleep(1200); // the 1 s lease lapses
    expect(await reapOnce(setup.env.c)).toBe(3);
    // Room for every job now: the requeued ones run again (attempts 2) beside D, but A's second
    // job still waits, for its key's head holds A's turn while requeued.
    await queuesRepository(admin).replace("killed", TENANT, { paused: false, concurrency: 5, groupConcurrency: 1, rateLimit: null, defaultTimeoutSeconds: null });
    const again = await claim("killed", 10);
    const ix = (rows: JobRow[]) => rows.map((r) => (r.payload as { i: number }).i).sort();
    expect(ix(again)).toEqual([0, 2, 3, 4]);
    expect(again.filter((r) => held.includes(r.id)).every((r) => r.attempts === 2)).toBe(true);
    expect(await claim("killed", 10)).toEqual([]);
    const [counted] = await admin<Array<{ n: number }>>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'killed' AND status = 'running'`;
    expect(counted!.n).toBe(4);
    const { repo } = claimerOf(0);
    for (const r of again) await repo.completeIfLeased(r.id, r.leaseToken!, null, null);
    expect(ix(await claim("killed", 10))).toEqual([1]);
  }, 60_000);
});
