import { describe, expect, it } from "vitest";
import { camelColumns } from "../../src/db/client.js";
import { jobsRepository } from "../../src/repositories/jobs.js";
import { createScheduleService } from "../../src/services/schedules.js";
import { usePools, useTestEnv } from "../helpers/app.js";

// Several schedulers, each on its own connection pool (as separate worker processes are), run
// the same due schedules at the same instants: each tick yields exactly one job.

const SCHEDULERS = 6;
const SCHEDULES = 4;
const TICKS = 30;

const setup = useTestEnv("schedules_races");
const connect = usePools(setup);

describe("concurrent schedulers", () => {
  it(`${SCHEDULERS} schedulers × ${SCHEDULES} per-second schedules × ${TICKS} ticks: one job per tick, none missing, no errors`, async () => {
    const t0 = new Date("2032-01-01T00:00:00Z");
    let clock = new Date(t0.getTime() - 500);
    const ids: string[] = [];
    const admin = createScheduleService({ sql: setup.env.c.sql, jobs: setup.env.c.repos.jobs, notifier: setup.env.c.notifier, graceMs: 60_000, clock: () => clock });
    for (let i = 0; i < SCHEDULES; i++) {
      const out = await admin.create("race", { name: `r${i}`, cron: "* * * * * *", overlap: "allow", job: { queue: "race", kind: "k", payload: { i } } });
      if (!out.ok) throw new Error(JSON.stringify(out));
      ids.push(out.value.id);
    }
    const schedulers = Array.from({ length: SCHEDULERS }, () => {
      const sql = connect({ max: 3, transform: camelColumns });
      return createScheduleService({ sql, jobs: jobsRepository(sql), notifier: setup.env.c.notifier, graceMs: 60_000, clock: () => clock });
    });
    const errors: unknown[] = [];
    let made = 0;
    for (let k = 0; k < TICKS; k++) {
      clock = new Date(t0.getTime() + k * 1000);
      const now = clock;
      // All at once, and each a second time, as a scheduler whose pass overlaps the next.
      const outs = await Promise.all(
        [...schedulers, ...schedulers].map((s) =>
          s.runDue(now).catch((e: unknown) => {
            errors.push(e);
            return [];
          }),
        ),
      );
      made += outs.reduce((a, o) => a + o.length, 0);
    }
    expect(errors).toEqual([]);
    const rows = await setup.env.c.sql<{ scheduleId: string; n: number; ticks: number }[]>`
      SELECT schedule_id, count(*)::int AS n, count(DISTINCT scheduled_for)::int AS ticks FROM jobs
      WHERE schedule_id = ANY(${ids}::uuid[]) GROUP BY schedule_id ORDER BY schedule_id`;
    expect(rows.map((r) => [r.n, r.ticks])).toEqual(ids.map(() => [TICKS, TICKS]));
    // The schedulers' own reports agree: no job reported made twice.
    expect(made).toBe(SCHEDULES * TICKS);
    const last = await setup.env.c.sql<{ nextRunAt: Date; lastRunAt: Date }[]>`
      SELECT next_run_at, last_run_at FROM schedules WHERE id = ANY(${ids}::uuid[])`;
    for (const r of last) {
      expect(r.lastRunAt.toISOString()).toBe(new Date(t0.getTime() + (TICKS - 1) * 1000).toISOString());
      expect(r.nextRunAt.toISOString()).toBe(new Date(t0.getTime() + TICKS * 1000).toISOString());
    }
  });
});
