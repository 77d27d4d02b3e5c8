import type { WorkerDeps } from "../container.js";
import { repeat } from "./every.js";

/**
 * The cron scheduler: runs every due tick, then sleeps until the earliest next tick, at most
 * `maxIdleMs` (a schedule created or resumed in another process is seen within that). Safe in
 * any number of processes: each tick's step is guarded (services/schedules.ts), so one job per
 * tick whoever runs it. `clock` is the time it schedules by.
 */
export function startScheduler(c: WorkerDeps, opts: { maxIdleMs?: number; clock?: () => Date } = {}) {
  const maxIdleMs = opts.maxIdleMs ?? c.config.JOBLINE_SCHEDULER_MAX_IDLE_MS;
  const clock = opts.clock ?? (() => new Date());
  const pass = async (): Promise<number> => {
    await c.services.schedules.runDue(clock());
    const earliest = await c.services.schedules.earliestNextRun();
    const wait = earliest === null ? maxIdleMs : earliest.getTime() - clock().getTime();
    return Math.max(5, Math.min(maxIdleMs, wait));
  };
  return repeat("scheduler", pass, maxIdleMs, c, "scheduler pass failed");
}
