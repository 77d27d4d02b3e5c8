import type postgres from "postgres";
import { beforeAll, describe, expect, it } from "vitest";
import { CLOCK_KEY } from "../../src/repositories/jobs.js";
import { toNewJob } from "../../src/services/jobs.js";
import { usePools, useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

const setup = useTestEnv("lock_order");
const connect = usePools(setup);
let other: postgres.Sql;
beforeAll(() => {
  other = connect({ max: 4 });
});

// Eight queues, so that an order other than the queues' own cannot pass by chance.
const queues = Array.from({ length: 8 }, (_, i) => `lock-order-${i}`);
const newJobs = (n: number) => queues.flatMap((queue) => Array.from({ length: n }, (_, i) => toNewJob("acme", { queue, kind: "k", payload: { i } })));

describe("queue clocks are locked in one order", () => {
  it("a writer that moves several queues' clocks takes them in queue order, so two such writers cannot deadlock", async () => {
    // Every queue gets its clock row first.
    await setup.env.c.sql.begin((tx) => setup.env.c.repos.jobs.insertMany(newJobs(1), tx));
    const clocks = await setup.env.c.sql`SELECT queue FROM job_groups WHERE fair_key = ${CLOCK_KEY} AND queue = ANY(${queues})`;
    expect(clocks.length).toBe(queues.length);

    // Another transaction holds the first queue's clock.
    const holder = await other.reserve();
    await holder`BEGIN`;
    await holder`SELECT 1 FROM job_groups WHERE queue = ${queues[0]!} AND fair_key = ${CLOCK_KEY} FOR UPDATE`;

    // 100 jobs per queue move every clock (by more than its slack of 64).
    const writer = setup.env.c.sql.begin((tx) => setup.env.c.repos.jobs.insertMany(newJobs(100), tx));
    await until("the writer to wait for the first clock", async () => {
      const waiting = await other`SELECT 1 FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'`;
      return waiting.length === 1 ? true : undefined;
    });

    // Waiting for the first clock, the writer holds none of the others.
    const held: string[] = [];
    for (const queue of queues.slice(1)) {
      const taken = await other
        .begin((tx) => tx`SELECT queue FROM job_groups WHERE queue = ${queue} AND fair_key = ${CLOCK_KEY} FOR UPDATE NOWAIT`)
        .then(
          (rows) => rows.length === 1,
          (e: { code?: string }) => {
            if (e.code !== "55P03") throw e;
            return false;
          },
        );
      if (!taken) held.push(queue);
    }
    expect(held).toEqual([]);

    await holder`COMMIT`;
    holder.release();
    const rows = await writer;
    expect(rows.length).toBe(800);
    // Each clock moved past the 100 tags its queue handed out, less the slack.
    const after = await setup.env.c.sql<{ lastTag: string }[]>`SELECT last_tag FROM job_groups WHERE fair_key = ${CLOCK_KEY} AND queue = ANY(${queues})`;
    expect(after.map((r) => Number(r.lastTag)).every((t) => t >= 100 - 64)).toBe(true);
  });
});
