import type { Queryable } from "../db/client.js";
import { scoped } from "./sql.js";
import type { CatchUp, Overlap } from "../domain/schedules.js";
import type { JobStatus } from "../domain/jobs.js";

/** A row of `schedules` (columns camel-cased by the driver's transform). */
export interface ScheduleRow {
  id: string;
  tenant: string;
  name: string;
  cron: string;
  timezone: string;
  job: ScheduleTemplate;
  overlap: Overlap;
  catchUp: CatchUp;
  paused: boolean;
  nextRunAt: Date | null;
  lastRunAt: Date | null;
  lastJobId: string | null;
  createdAt: Date;
  updatedAt: Date;
  version: number;
}

/** The job a tick submits: POST /v1/jobs's fields without runAt. */
export interface ScheduleTemplate {
  queue: string;
  kind: string;
  payload?: unknown;
  [field: string]: unknown;
}

export type ScheduleFields = Pick<
  ScheduleRow,
  "name" | "cron" | "timezone" | "job" | "overlap" | "catchUp" | "paused" | "nextRunAt"
>;

const json = (v: unknown) => JSON.stringify(v);

/** null when the tenant has a schedule of that name already. */
export async function insertIfNameFree(tenant: string, f: ScheduleFields, q: Queryable): Promise<ScheduleRow | null> {
  const rows = await q<ScheduleRow[]>`
    INSERT INTO schedules (tenant, name, cron, timezone, job, overlap, catch_up, paused, next_run_at)
    VALUES (${tenant}, ${f.name}, ${f.cron}, ${f.timezone}, ${json(f.job)}::text::jsonb, ${f.overlap},
            ${f.catchUp}, ${f.paused}, ${f.nextRunAt})
    ON CONFLICT (tenant, name) DO NOTHING
    RETURNING *`;
  return rows[0] ?? null;
}

export async function findById(id: string, tenant: string | null, q: Queryable): Promise<ScheduleRow | null> {
  const rows = await q<ScheduleRow[]>`SELECT * FROM schedules WHERE id = ${id} ${scoped(q, tenant)}`;
  return rows[0] ?? null;
}

/** Newest first, keyset on (created_at, id); created_at travels as text so its microseconds survive. */
export function list(
  tenant: string | null,
  limit: number,
  after: { createdAt: string; id: string } | undefined,
  q: Queryable,
) {
  const conds = [
    tenant === null ? null : q`tenant = ${tenant}`,
    after === undefined ? null : q`(created_at, id) < (${after.createdAt}::text::timestamptz, ${after.id}::uuid)`,
  ].filter((c) => c !== null);
  const where = conds.reduce((acc, c, i) => (i === 0 ? q`WHERE ${c}` : q`${acc} AND ${c}`), q``);
  return q<Array<ScheduleRow & { cursorTs: string }>>`
    SELECT *, created_at::text AS cursor_ts FROM schedules ${where}
    ORDER BY created_at DESC, id DESC LIMIT ${limit}`;
}

/** A PATCH: the whole new field set, applied only to the version it was computed from. */
export async function updateIfVersion(id: string, version: number, f: ScheduleFields, q: Queryable): Promise<ScheduleRow | null> {
  const rows = await q<ScheduleRow[]>`
    UPDATE schedules SET name = ${f.name}, cron = ${f.cron}, timezone = ${f.timezone}, job = ${json(f.job)}::text::jsonb,
           overlap = ${f.overlap}, catch_up = ${f.catchUp}, paused = ${f.paused}, next_run_at = ${f.nextRunAt},
           updated_at = now(), version = version + 1
    WHERE id = ${id} AND version = ${version}
    RETURNING *`;
  return rows[0] ?? null;
}

export async function deleteById(id: string, tenant: string | null, q: Queryable): Promise<boolean> {
  const rows = await q`DELETE FROM schedules WHERE id = ${id} ${scoped(q, tenant)} RETURNING 1`;
  return rows.length > 0;
}

/** Schedules whose next tick is at or before `now` (paused ones have no next tick). */
export function listDue(now: Date, limit: number, q: Queryable) {
  return q<ScheduleRow[]>`
    SELECT * FROM schedules WHERE next_run_at <= ${now} ORDER BY next_run_at LIMIT ${limit}`;
}

export async function earliestNextRun(q: Queryable): Promise<Date | null> {
  const rows = await q<{ at: Date | null }[]>`SELECT min(next_run_at) AS at FROM schedules WHERE next_run_at IS NOT NULL`;
  return rows[0]?.at ?? null;
}

/**
 * The step of one tick: moves next_run_at on from the value this scheduler read, and only from
 * it. Of several schedulers that read the same row, one wins; the others (blocked on the row
 * lock until it commits) re-check the guard and change nothing.
 */
export async function advanceIfDue(id: string, expected: Date, version: number, next: Date | null, q: Queryable) {
  const rows = await q<ScheduleRow[]>`
    UPDATE schedules SET next_run_at = ${next}, updated_at = now(), version = version + 1
    WHERE id = ${id} AND next_run_at = ${expected} AND version = ${version}
    RETURNING *`;
  return rows[0] ?? null;
}

/** In the transaction of advanceIfDue, which holds the row. */
export async function recordRun(id: string, tick: Date, jobId: string, q: Queryable): Promise<ScheduleRow> {
  const rows = await q<ScheduleRow[]>`
    UPDATE schedules SET last_run_at = ${tick}, last_job_id = ${jobId} WHERE id = ${id} RETURNING *`;
  return rows[0]!;
}

/** The status of a schedule's previous run (null when it has none, or it was deleted). */
export async function statusOfJob(id: string | null, q: Queryable): Promise<JobStatus | null> {
  if (id === null) return null;
  const rows = await q<{ status: JobStatus }[]>`SELECT status FROM jobs WHERE id = ${id}`;
  return rows[0]?.status ?? null;
}
