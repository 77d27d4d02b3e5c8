import { describe, expect, it } from "vitest";
import { createScheduleService, type ScheduleInput } from "../../src/services/schedules.js";
import { useTestEnv } from "../helpers/app.js";

// Every test here runs the scheduler by a clock it sets (runDue(now), and the service's clock
// for create and PATCH): hours and days pass without waiting for them.

const setup = useTestEnv("schedules_clock");
let clock = new Date();
const at = (iso: string) => new Date(iso);
const plus = (d: Date, ms: number) => new Date(d.getTime() + ms);
const MIN = 60_000;
const HOUR = 60 * MIN;
const svc = (graceMs = 10_000) =>
  createScheduleService({ sql: setup.env.c.sql, jobs: setup.env.c.repos.jobs, notifier: setup.env.c.notifier, graceMs, clock: () => clock });


let n = 0;
async function schedule(s: ReturnType<typeof svc>, input: Partial<ScheduleInput>, now: Date) {
  clock = now;
  const out = await s.create("clock", { name: `s${n++}`, cron: "0 * * * *", job: { queue: "clock", kind: "tick", payload: {} }, ...input });
  if (!out.ok) throw new Error(JSON.stringify(out));
  return out.value;
}
const ticksOf = async (id: string) =>
  (await setup.env.c.sql<{ scheduledFor: Date; id: string; status: string }[]>`
    SELECT scheduled_for, id, status::text FROM jobs WHERE schedule_id = ${id} ORDER BY scheduled_for`).map((r) => ({
    ...r,
    at: r.scheduledFor.toISOString(),
  }));
const nextRunAt = async (id: string) =>
  (await setup.env.c.sql<{ nextRunAt: Date | null }[]>`SELECT next_run_at FROM schedules WHERE id = ${id}`)[0]!.nextRunAt?.toISOString() ?? null;

describe("overlap", () => {
  it('"skip": no new run while the previous run is queued or running; the tick after it finished runs', async () => {
    const s = svc();
    const t0 = at("2031-01-01T00:00:00Z");
    const sc = await schedule(s, { cron: "* * * * *", overlap: "skip" }, plus(t0, -30_000));
    expect(sc.nextRunAt?.toISOString()).toBe(t0.toISOString());
    await s.runDue(t0);
    const [first] = await ticksOf(sc.id);
    expect(first).toMatchObject({ at: t0.toISOString(), status: "queued" });
    await s.runDue(plus(t0, MIN)); // previous queued: skipped
    const claimed = await setup.env.c.services.jobs.claim(first!.id, null, { workerId: "w", leaseSeconds: 600 });
    if (!claimed.ok) throw new Error(JSON.stringify(claimed));
    await s.runDue(plus(t0, 2 * MIN)); // previous running: skipped
    expect((await ticksOf(sc.id)).map((t) => t.at)).toEqual([t0.toISOString()]);
    expect(await nextRunAt(sc.id)).toBe(plus(t0, 3 * MIN).toISOString());
    const done = await setup.env.c.services.jobs.complete(first!.id, null, claimed.value.leaseToken!, null);
    expect(done.ok).toBe(true);
    await s.runDue(plus(t0, 3 * MIN));
    expect((await ticksOf(sc.id)).map((t) => t.at)).toEqual([t0.toISOString(), plus(t0, 3 * MIN).toISOString()]);
  });

  it('"allow" (the default): a run per tick whatever the previous one is doing', async () => {
    const s = svc();
    const t0 = at("2031-01-02T00:00:00Z");
    const sc = await schedule(s, { cron: "* * * * *" }, plus(t0, -30_000));
    for (let i = 0; i < 3; i++) await s.runDue(plus(t0, i * MIN));
    expect((await ticksOf(sc.id)).map((t) => t.status)).toEqual(["queued", "queued", "queued"]);
  });
});

describe("catchUp after downtime", () => {
  const t0 = at("2031-02-01T00:00:00Z");
  it('"latest" (the default): one run, for the latest missed tick, then on schedule', async () => {
    const s = svc();
    const sc = await schedule(s, {}, plus(t0, -MIN));
    await s.runDue(plus(t0, 5 * HOUR + 10 * MIN)); // ticks t0 … t0+5h all missed
    expect((await ticksOf(sc.id)).map((t) => t.at)).toEqual([plus(t0, 5 * HOUR).toISOString()]);
    expect(await nextRunAt(sc.id)).toBe(plus(t0, 6 * HOUR).toISOString());
    await s.runDue(plus(t0, 6 * HOUR + 2000));
    expect((await ticksOf(sc.id)).map((t) => t.at)).toEqual([plus(t0, 5 * HOUR).toISOString(), plus(t0, 6 * HOUR).toISOString()]);
  });

  it('"none": nothing for the missed ticks, then on schedule', async () => {
    const s = svc();
    const sc = await schedule(s, { catchUp: "none" }, plus(t0, -MIN));
    await s.runDue(plus(t0, 5 * HOUR + 10 * MIN));
    expect(await ticksOf(sc.id)).toEqual([]);
    expect(await nextRunAt(sc.id)).toBe(plus(t0, 6 * HOUR).toISOString());
    await s.runDue(plus(t0, 6 * HOUR + 2000));
    expect((await ticksOf(sc.id)).map((t) => t.at)).toEqual([plus(t0, 6 * HOUR).toISOString()]);
  });

  it("a scheduler late by less than the grace is not downtime: every tick in it runs, in both modes", async () => {
    const s = svc(10_000);
    const t1 = at("2031-02-02T00:00:00Z");
    for (const catchUp of ["none", "latest"] as const) {
      const sc = await schedule(s, { cron: "* * * * * *", catchUp }, plus(t1, -500));
      await s.runDue(plus(t1, 6_500));
      expect((await ticksOf(sc.id)).length, catchUp).toBe(7);
    }
  });
});

describe("pause and resume", () => {
  it("resuming does not run the ticks missed while paused: the next run is the next tick after the resume", async () => {
    const s = svc();
    const t0 = at("2031-03-01T00:00:00Z");
    const sc = await schedule(s, {}, plus(t0, -MIN)); // catchUp latest
    clock = plus(t0, -30_000);
    expect((await s.patch(sc.id, null, { paused: true })).ok).toBe(true);
    await s.runDue(plus(t0, 3 * HOUR));
    clock = plus(t0, 3 * HOUR + 5 * MIN);
    const resumed = await s.patch(sc.id, null, { paused: false });
    expect(resumed.ok && resumed.value.nextRunAt?.toISOString()).toBe(plus(t0, 4 * HOUR).toISOString());
    await s.runDue(plus(t0, 3 * HOUR + 5 * MIN));
    expect(await ticksOf(sc.id)).toEqual([]);
    await s.runDue(plus(t0, 4 * HOUR));
    expect((await ticksOf(sc.id)).map((t) => t.at)).toEqual([plus(t0, 4 * HOUR).toISOString()]);
  });
});

describe("daylight saving time (croner: a fixed-time job runs once on both change days)", () => {
  // 02:30 Europe/Berlin. 2026-03-29: clocks jump 02:00 → 03:00, croner runs it at the first valid
  // time after the gap, 03:00 CEST (01:00Z). 2026-10-25: 02:00-03:00 happens twice, croner runs it
  // at the first, 02:30 CEST (00:30Z). The scheduler steps its clock every 5 minutes across both days.
  const walk = async (from: string, to: string) => {
    const s = svc(10 * MIN);
    const sc = await schedule(s, { cron: "30 2 * * *", timezone: "Europe/Berlin" }, at(from));
    for (let t = at(from); t <= at(to); t = plus(t, 5 * MIN)) await s.runDue(t);
    return (await ticksOf(sc.id)).map((t) => t.at);
  };
  it("spring forward: one run on the day, at 03:00 local", async () => {
    expect(await walk("2026-03-28T03:00:00Z", "2026-03-30T03:00:00Z")).toEqual(["2026-03-29T01:00:00.000Z", "2026-03-30T00:30:00.000Z"]);
  });
  it("fall back: one run on the day, at the first 02:30 local", async () => {
    expect(await walk("2026-10-24T03:00:00Z", "2026-10-26T03:00:00Z")).toEqual(["2026-10-25T00:30:00.000Z", "2026-10-26T01:30:00.000Z"]);
  });
});

describe("one job per tick", () => {
  it("a second insert for the same schedule and tick is a no-op (the unique key), not an error", async () => {
    const tick = at("2031-04-01T00:00:00Z");
    const j = { tenant: "clock", queue: "u", kind: "k", payload: {}, priority: 0, groupKey: null, runAt: null, maxAttempts: 5, webhookUrl: null, idempotencyKey: null, requestHash: null, batchId: null };
    const schedule = { id: "01890000-0000-7000-8000-000000000001", tick };
    expect(await setup.env.c.repos.jobs.insert({ ...j, schedule })).not.toBeNull();
    expect(await setup.env.c.repos.jobs.insert({ ...j, schedule })).toBeNull();
  });

  it("a scheduler holding a stale read of the schedule changes nothing (the guard on next_run_at)", async () => {
    const s = svc();
    const t0 = at("2031-05-01T00:00:00Z");
    const sc = await schedule(s, { cron: "* * * * *" }, plus(t0, -30_000));
    await s.runDue(t0);
    // Replay the same step from the row as it was before: nothing moves.
    const { advanceIfDue } = await import("../../src/repositories/schedules.js");
    expect(await advanceIfDue(sc.id, t0, sc.version, plus(t0, MIN), setup.env.c.sql)).toBeNull();
    expect((await ticksOf(sc.id)).length).toBe(1);
  });
});
