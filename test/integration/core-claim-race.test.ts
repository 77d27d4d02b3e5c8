import postgres from "postgres";
import { beforeAll, describe, expect, it } from "vitest";
import { jobsRepository, type JobRow, type NewJob } from "../../src/repositories/jobs.js";
import { toNewJob } from "../../src/services/jobs.js";
import { usePools, useTestEnv } from "../helpers/app.js";

const CLAIMERS = 32;
const JOBS = 5000;

const setup = useTestEnv("core_claim_race");
const connect = usePools(setup);
const pools: postgres.Sql[] = [];
beforeAll(() => {
  // One connection per claimer: the race is between PostgreSQL sessions, not inside one pool's queue.
  for (let i = 0; i < CLAIMERS; i++) pools.push(connect({ max: 1, transform: postgres.camel }));
});

const newJob = (i: number): NewJob =>
  toNewJob(`t${i % 3}`, { queue: "race", kind: "k", payload: { i }, priority: i % 4, groupKey: `g${i % 7}` });

describe("claim race", () => {
  it(`${CLAIMERS} claimers on their own connections take ${JOBS} jobs: each exactly once, none lost, attempts = 1`, async () => {
    const inserted = await setup.env.c.sql.begin((tx) => setup.env.c.repos.jobs.insertMany(Array.from({ length: JOBS }, (_, i) => newJob(i)), tx));
    expect(inserted).toHaveLength(JOBS);

    const claimedBy = new Map<string, number>();
    const duplicates: string[] = [];
    const perClaimer: number[] = [];
    const emptyWhileQueued = { n: 0 };

    const claimer = async (i: number) => {
      const repo = jobsRepository(pools[i]!);
      let mine = 0;
      for (;;) {
        const max = 1 + Math.floor(Math.random() * 10);
        const rows: JobRow[] = await repo.claimNext({ queues: ["race"], tenant: null, workerId: `w${i}`, leaseSeconds: 600, max });
        for (const r of rows) {
          expect(r.status).toBe("running");
          expect(r.attempts).toBe(1);
          expect(r.workerId).toBe(`w${i}`);
          if (claimedBy.has(r.id)) duplicates.push(r.id);
          claimedBy.set(r.id, i);
        }
        mine += rows.length;
        if (rows.length > 0) continue;
        // SKIP LOCKED may show an empty page while other claimers hold the last rows; stop only when none is queued.
        const [{ n }] = await pools[i]!<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs WHERE status = 'queued'`;
        if (n === 0) break;
        emptyWhileQueued.n++;
      }
      perClaimer[i] = mine;
    };
    await Promise.all(Array.from({ length: CLAIMERS }, (_, i) => claimer(i)));

    expect(duplicates).toEqual([]);
    expect(claimedBy.size).toBe(JOBS);
    expect(new Set(claimedBy.keys())).toEqual(new Set(inserted.map((j) => j.id)));

    const rows = await setup.env.c.sql<{ status: string; attempts: number; version: number; n: number }[]>`
      SELECT status::text, attempts, version, count(*)::int AS n FROM jobs GROUP BY 1, 2, 3`;
    expect(rows).toEqual([{ status: "running", attempts: 1, version: 2, n: JOBS }]);
    const [tokens] = await setup.env.c.sql<[{ n: number }]>`SELECT count(DISTINCT lease_token)::int AS n FROM jobs`;
    expect(tokens.n).toBe(JOBS);
    // The DB agrees with the claimers about who holds what.
    const owners = await setup.env.c.sql<{ id: string; workerId: string }[]>`SELECT id, worker_id FROM jobs`;
    for (const o of owners) expect(o.workerId).toBe(`w${claimedBy.get(o.id)}`);

    const busy = perClaimer.filter((n) => n > 0).length;
    console.log(`claim race: ${JOBS} jobs over ${CLAIMERS} claimers; ${busy} claimers got work; per claimer min ${Math.min(...perClaimer)} max ${Math.max(...perClaimer)}; empty pages while queued: ${emptyWhileQueued.n}`);
    // More than one session really took part, or this was not a race.
    expect(busy).toBeGreaterThan(CLAIMERS / 2);
  });
});
