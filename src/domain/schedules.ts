import { Cron } from "croner";

// Cron parsing and tick arithmetic come from croner (time zones through Intl, documented DST
// rules, see README "Schedules"); nothing here does date arithmetic of its own.

export const OVERLAP = ["allow", "skip"] as const;
export const CATCH_UP = ["none", "latest"] as const;
export type Overlap = (typeof OVERLAP)[number];
export type CatchUp = (typeof CATCH_UP)[number];

/** A parsed cron in a time zone, or why it is not one (a 400 for the caller). */
export function parseCron(cron: string, timezone: string): { ok: true; cron: Cron } | { ok: false; reason: string } {
  try {
    new Intl.DateTimeFormat("en", { timeZone: timezone });
  } catch {
    return { ok: false, reason: `unknown time zone: ${timezone}` };
  }
  try {
    const c = new Cron(cron.trim(), { timezone, mode: "5-or-6-parts", paused: true });
    return { ok: true, cron: c };
  } catch (e) {
    return { ok: false, reason: (e as Error).message };
  }
}

/** The first tick strictly after `after`; null when the cron has none (e.g. 30 February). */
export function nextTick(cron: string, timezone: string, after: Date): Date | null {
  const p = parseCron(cron, timezone);
  return p.ok ? p.cron.nextRun(after) : null;
}

export interface TickPlan {
  /** The tick to run a job for now, or null (nothing to run in this step). */
  fire: Date | null;
  /** The schedule's next_run_at after this step. */
  next: Date | null;
}

/**
 * One step of a due schedule (next_run_at = `due` <= `now`). A tick later than `graceMs` was
 * missed (no scheduler got to it in time): all missed ticks collapse into one step that runs the
 * latest of them (catchUp "latest") or none ("none"); a tick within the grace runs as itself.
 */
export function planTick(
  s: { cron: string; timezone: string; catchUp: CatchUp },
  due: Date,
  now: Date,
  graceMs: number,
): TickPlan {
  const p = parseCron(s.cron, s.timezone);
  if (!p.ok) return { fire: null, next: null };
  const horizon = new Date(now.getTime() - graceMs);
  if (due.getTime() >= horizon.getTime()) return { fire: due, next: p.cron.nextRun(due) };
  // The first tick that is not missed (may lie ahead of now), and the latest missed one.
  const next = p.cron.nextRun(new Date(horizon.getTime() - 1));
  const prev = p.cron.previousRuns(1, horizon)[0];
  const latestMissed = prev && prev.getTime() > due.getTime() ? prev : due;
  return { fire: s.catchUp === "latest" ? latestMissed : null, next };
}
