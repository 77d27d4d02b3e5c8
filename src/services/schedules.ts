import type { Sql } from "../db/client.js";
import { codeOf } from "../db/errors.js";
import { inTx } from "../db/tx.js";
import { storableProblem } from "../domain/json.js";
import { err, ok } from "../domain/outcomes.js";
import { type CatchUp, type Overlap, parseCron, planTick } from "../domain/schedules.js";
import type { JobRow, JobsRepository } from "../repositories/jobs.js";
import * as repo from "../repositories/schedules.js";
import type { ScheduleFields, ScheduleRow, ScheduleTemplate } from "../repositories/schedules.js";
import { MAX_PAYLOAD_BYTES, payloadBytes, type SubmitInput, type TenantScope, toNewJob } from "./jobs/input.js";
import type { Notifier } from "./notifier.js";

export interface ScheduleInput {
  name: string;
  cron: string;
  timezone?: string | undefined;
  job: ScheduleTemplate;
  overlap?: Overlap | undefined;
  catchUp?: CatchUp | undefined;
  paused?: boolean | undefined;
}
export type SchedulePatch = Partial<ScheduleInput>;

/** How many ticks of one schedule a pass runs before it moves on to the others. */
const STEPS_PER_PASS = 100;

interface ScheduleDeps {
  sql: Sql;
  jobs: JobsRepository;
  notifier: Notifier;
  /** A tick later than this was missed; catchUp decides what runs for it. */
  graceMs: number;
  clock?: () => Date;
}
type ScheduleCtx = Required<ScheduleDeps>;

/** The stored fields, or why they cannot be (400). nextRunAt: the first tick after `now` unless paused. */
function fieldsOf(i: Required<Omit<ScheduleInput, "timezone">> & { timezone: string }, now: Date, keepNext?: Date | null) {
  const parsed = parseCron(i.cron, i.timezone);
  if (!parsed.ok) return err("invalid", `cron: ${parsed.reason}`);
  if (payloadBytes(i.job.payload ?? {}) > MAX_PAYLOAD_BYTES) return err("payload_too_large", "payload exceeds 256 KiB");
  const bad = storableProblem(i.job.payload ?? {});
  if (bad) return err("invalid", bad);
  const fresh = parsed.cron.nextRun(now);
  if (fresh === null) return err("invalid", "cron: this expression has no future tick");
  const nextRunAt = i.paused ? null : keepNext !== undefined ? keepNext : fresh;
  return ok<ScheduleFields>({ ...i, cron: i.cron.trim(), nextRunAt });
}

export async function create(c: ScheduleCtx, tenant: string, input: ScheduleInput) {
  const f = fieldsOf(
    { overlap: "allow", catchUp: "latest", paused: false, ...stripUndefined(input), timezone: input.timezone ?? "UTC" },
    c.clock(),
  );
  if (!f.ok) return f;
  const row = await repo.insertIfNameFree(tenant, f.value, c.sql);
  return row ? ok(row) : err("name_taken", `a schedule named ${input.name} exists already`);
}

export async function get(c: ScheduleCtx, id: string, scope: TenantScope) {
  const row = await repo.findById(id, scope, c.sql);
  return row ? ok(row) : err("not_found");
}

/**
 * Applied to the version it was computed from; a concurrent change (a tick, another PATCH)
 * makes it compute again. A new cron or time zone, or a resume, starts from the next tick
 * after now: ticks missed while paused do not run.
 */
export async function patch(c: ScheduleCtx, id: string, scope: TenantScope, p: SchedulePatch) {
  for (let pass = 0; pass < 10; pass++) {
    const cur = await repo.findById(id, scope, c.sql);
    if (!cur) return err("not_found");
    const merged = { ...cur, ...stripUndefined(p) };
    const recompute = merged.cron !== cur.cron || merged.timezone !== cur.timezone || (cur.paused && !merged.paused);
    const f = fieldsOf(merged, c.clock(), recompute ? undefined : cur.nextRunAt);
    if (!f.ok) return f;
    try {
      const row = await repo.updateIfVersion(id, cur.version, f.value, c.sql);
      if (row) return ok(row);
    } catch (e) {
      if (codeOf(e) === "23505") return err("name_taken", `a schedule named ${merged.name} exists already`);
      throw e;
    }
  }
  return err("unavailable", "the schedule kept changing; retry");
}

export async function remove(c: ScheduleCtx, id: string, scope: TenantScope) {
  return (await repo.deleteById(id, scope, c.sql)) ? ok(true) : err("not_found");
}

/**
 * One step of a due schedule, in one transaction: the guarded advance of next_run_at (only
 * one scheduler wins it), then the tick's job (a no-op if the tick has one, by the unique
 * key on schedule and tick) and the schedule's record of it. "lost": another scheduler, a
 * PATCH or a DELETE changed the row first.
 */
async function step(c: ScheduleCtx, s: ScheduleRow, due: Date, now: Date) {
  const plan = planTick(s, due, now, c.graceMs);
  return inTx(c.sql, async (tx) => {
    const held = await repo.advanceIfDue(s.id, due, s.version, plan.next, tx);
    if (!held) return { kind: "lost" as const };
    let job: JobRow | null = null;
    if (plan.fire && !(held.overlap === "skip" && isActive(await repo.statusOfJob(held.lastJobId, tx)))) {
      job = await c.jobs.insert(toNewJob(held.tenant, held.job as SubmitInput, { schedule: { id: held.id, tick: plan.fire } }), tx);
    }
    const row = job ? await repo.recordRun(held.id, plan.fire!, job.id, tx) : held;
    return { kind: "stepped" as const, row, job };
  });
}

/** Runs every tick due at `now` (the injectable clock of the scheduler and of tests). */
export async function runDue(c: ScheduleCtx, now: Date, limit = 100): Promise<JobRow[]> {
  const made: JobRow[] = [];
  for (const s of await repo.listDue(now, limit, c.sql)) {
    let cur: ScheduleRow = s;
    for (let n = 0; n < STEPS_PER_PASS && cur.nextRunAt && cur.nextRunAt.getTime() <= now.getTime(); n++) {
      const out = await step(c, cur, cur.nextRunAt, now);
      if (out.kind === "lost") break;
      if (out.job) {
        made.push(out.job);
        c.notifier.notify(out.job.queue);
      }
      cur = out.row;
    }
  }
  return made;
}

export function createScheduleService(deps: ScheduleDeps) {
  const c: ScheduleCtx = { ...deps, clock: deps.clock ?? (() => new Date()) };
  return {
    create: (tenant: string, input: ScheduleInput) => create(c, tenant, input),
    get: (id: string, scope: TenantScope) => get(c, id, scope),
    list: (scope: TenantScope, limit: number, after?: { createdAt: string; id: string }) => repo.list(scope, limit, after, c.sql),
    patch: (id: string, scope: TenantScope, p: SchedulePatch) => patch(c, id, scope, p),
    remove: (id: string, scope: TenantScope) => remove(c, id, scope),
    runDue: (now: Date, limit?: number) => runDue(c, now, limit),
    earliestNextRun: () => repo.earliestNextRun(c.sql),
  };
}

const isActive = (s: string | null) => s === "queued" || s === "running";

function stripUndefined<T extends object>(o: T): { [K in keyof T]: Exclude<T[K], undefined> } {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as never;
}

export type ScheduleService = ReturnType<typeof createScheduleService>;
