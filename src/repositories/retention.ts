import type { Queryable } from "../db/client.js";
import { TERMINAL_BATCH_STATUSES } from "../domain/batches.js";
import { CLOCK_KEY } from "./jobs/fairness.js";
import { statusIn } from "./sql.js";

// Deletes of rows past the retention period, about `chunk` rows per statement. Every DELETE
// re-checks its condition on the row it deletes, so a row a concurrent statement changed (a
// batch retried meanwhile) is left alone.

/** By the database's clock, which wrote every time it is compared with. */
export async function retentionCutoff(days: number, q: Queryable): Promise<Date> {
  const [row] = await q<[{ cutoff: Date }]>`
    SELECT now() - ${days}::float8 * interval '1 day' AS cutoff`;
  return row.cutoff;
}

/** Finished stand-alone jobs. A batch's jobs go with their batch, never one by one. */
export async function deleteFinishedJobs(cutoff: Date, chunk: number, q: Queryable): Promise<number> {
  const rows = await q`
      DELETE FROM jobs WHERE id IN (
        SELECT id FROM jobs WHERE finished_at < ${cutoff} AND batch_id IS NULL
        LIMIT ${chunk} FOR UPDATE SKIP LOCKED)
      AND finished_at < ${cutoff} AND batch_id IS NULL
      RETURNING 1`;
  return rows.length;
}

/** Terminal batches with all their jobs (ON DELETE CASCADE): as many as hold about `chunk` jobs, at least one. */
export async function deleteFinishedBatches(cutoff: Date, chunk: number, q: Queryable): Promise<number> {
  const terminal = (col: string) => statusIn(q, col, TERMINAL_BATCH_STATUSES);
  const rows = await q`
      DELETE FROM batches WHERE id IN (
        SELECT id FROM (
          SELECT id, sum(total) OVER w AS acc, row_number() OVER w AS rn FROM batches
          WHERE finished_at < ${cutoff} AND ${terminal("status")}
          WINDOW w AS (ORDER BY finished_at, id)
          ORDER BY finished_at, id LIMIT ${chunk}) s
        WHERE acc <= ${chunk} OR rn = 1)
      AND finished_at < ${cutoff} AND ${terminal("status")}
      RETURNING 1`;
  return rows.length;
}

/** Fairness counters of groups idle that long (not the queue clocks): a group that submits again starts at the virtual time. */
export async function deleteIdleGroups(cutoff: Date, chunk: number, q: Queryable): Promise<number> {
  const rows = await q`
      DELETE FROM job_groups WHERE (queue, fair_key) IN (
        SELECT queue, fair_key FROM job_groups WHERE updated_at < ${cutoff} AND fair_key <> ${CLOCK_KEY}
        LIMIT ${chunk} FOR UPDATE SKIP LOCKED)
      AND updated_at < ${cutoff}
      RETURNING 1`;
  return rows.length;
}
