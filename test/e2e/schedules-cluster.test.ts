import { beforeAll, describe, expect, it } from "vitest";
import { useJobline } from "./helpers/useJobline.js";
import { api, type Jobline } from "./helpers/util.js";

// Three real `jobline worker` processes run one every-second schedule; one is SIGKILLed and
// restarted in the middle. Each tick gets exactly one job, and no tick is skipped.

const RUN_MS = 18_000;
const t = useJobline("schedules_cluster");
let apiProc: Jobline;
const workerEnv = { JOBLINE_SHUTDOWN_TIMEOUT_MS: "1000", JOBLINE_SCHEDULER_MAX_IDLE_MS: "500" };

beforeAll(async () => {
  apiProc = await t.start("serve");
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe("three scheduler processes, one killed and restarted", () => {
  it("an every-second schedule gets exactly one job per tick, none missing", async () => {
    const workers = await Promise.all([0, 1, 2].map(() => t.start("worker", workerEnv)));
    const key = await t.key(apiProc, "cron", "client");
    const s = await api(apiProc.url, key, "POST", "/v1/schedules", {
      name: "every-second",
      cron: "* * * * * *",
      job: { queue: "cron-e2e", kind: "tick" },
    });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    const first = Date.parse(s.body.nextRunAt as string);

    await sleep(RUN_MS / 3);
    const killed = workers[0]!;
    await killed.kill();
    expect((await killed.exited).signal).toBe("SIGKILL");
    const killedAt = Date.now();
    await sleep(1500);
    workers[0] = await t.start("worker", workerEnv);
    const restartedAt = Date.now();
    // Run on for a while with the restarted process among the schedulers.
    await sleep(Math.max(RUN_MS - (Date.now() - first), 6000));
    const end = Date.now();
    await Promise.all(workers.map((w) => w.stop()));

    const rows = await t.sql<{ scheduled_for: Date; created_at: Date }[]>`
      SELECT scheduled_for, created_at FROM jobs WHERE schedule_id = ${s.body.id as string} ORDER BY scheduled_for`;
    const ticks = rows.map((r) => r.scheduled_for.getTime());
    // Exactly one job per tick.
    expect(new Set(ticks).size).toBe(ticks.length);
    // Every second from the first tick up to shortly before the end has its job: none missed,
    // also across the kill (two schedulers stayed alive) and the restart.
    const lastExpected = Math.floor((end - 2000) / 1000) * 1000;
    const want: number[] = [];
    for (let t = first; t <= lastExpected; t += 1000) want.push(t);
    expect(ticks.filter((t) => t <= lastExpected)).toEqual(want);
    const lags = rows.map((r) => r.created_at.getTime() - r.scheduled_for.getTime()).sort((a, b) => a - b);
    const p50 = lags[Math.floor(lags.length / 2)]!;
    const max = lags[lags.length - 1]!;
    console.log(
      `schedules e2e: ${rows.length} ticks over ${((end - first) / 1000).toFixed(1)} s, 3 workers (one SIGKILLed at +${((killedAt - first) / 1000).toFixed(1)} s, restarted at +${((restartedAt - first) / 1000).toFixed(1)} s); job inserted after its tick: p50 ${p50} ms, max ${max} ms`,
    );
    // Bounded, not a speed claim: a tick's job comes within the scheduler's grace (10 s) on a loaded machine.
    expect(max).toBeLessThan(10_000);
    expect(lags[0]).toBeGreaterThanOrEqual(0);
  });
});
