import type { Container } from "../container.js";
import { TERMINAL_BATCH_STATUSES } from "../domain/batches.js";
import { CLOCK_KEY } from "../repositories/jobs.js";

const TERMINAL_BATCHES = TERMINAL_BATCH_STATUSES.map((s) => `'${s}'`).join(",");

/** Runs `step` until it reports that it found less than a full chunk. */
async function drain(step: () => Promise<{ deleted: number; full: boolean }>): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await step();
    total += r.deleted;
    if (!r.full) return total;
  }
}

/**
 * One retention pass over rows older than JOBLINE_RETENTION_DAYS, about
 * `chunk` rows per statement so none holds many locks or runs long:
 * - finished stand-alone jobs;
 * - terminal batches, each with all its jobs (ON DELETE CASCADE). A batch's
 *   jobs are never deleted one by one: a batch that is not terminal keeps
 *   all of them, and a batch retry never finds some of its jobs gone;
 * - delivered and dead outbox rows;
 * - fairness counters of groups idle that long (not the queue clocks): a group
 *   that submits again simply starts at the queue's virtual time, as a new one does.
 * Every DELETE re-checks its condition on the row it deletes, so a row a
 * concurrent statement changed (a batch retried meanwhile) is left alone.
 */
export async function retainOnce(
  c: Container,
  chunk = 1000,
): Promise<{ jobs: number; batches: number; events: number; groups: number }> {
  // By the database's clock, which wrote every time it is compared with.
  const [{ cutoff }] = await c.sql<[{ cutoff: Date }]>`
    SELECT now() - ${c.config.JOBLINE_RETENTION_DAYS}::float8 * interval '1 day' AS cutoff`;
  const terminal = c.sql.unsafe(TERMINAL_BATCHES);

  const jobs = await drain(async () => {
    const rows = await c.sql`
      DELETE FROM jobs WHERE id IN (
        SELECT id FROM jobs WHERE finished_at < ${cutoff} AND batch_id IS NULL
        LIMIT ${chunk} FOR UPDATE SKIP LOCKED)
      AND finished_at < ${cutoff} AND batch_id IS NULL
      RETURNING 1`;
    return { deleted: rows.length, full: rows.length === chunk };
  });

  // As many batches as hold about `chunk` jobs together; always at least one, however large.
  const batches = await drain(async () => {
    const rows = await c.sql`
      DELETE FROM batches WHERE id IN (
        SELECT id FROM (
          SELECT id, sum(total) OVER w AS acc, row_number() OVER w AS rn FROM batches
          WHERE finished_at < ${cutoff} AND status IN (${terminal})
          WINDOW w AS (ORDER BY finished_at, id)
          ORDER BY finished_at, id LIMIT ${chunk}) s
        WHERE acc <= ${chunk} OR rn = 1)
      AND finished_at < ${cutoff} AND status IN (${terminal})
      RETURNING 1`;
    return { deleted: rows.length, full: rows.length > 0 };
  });

  const events = await drain(async () => {
    const n = await c.repos.outbox.deleteSettledBefore(cutoff, chunk);
    return { deleted: n, full: n === chunk };
  });
  const groups = await drain(async () => {
    const rows = await c.sql`
      DELETE FROM job_groups WHERE (queue, fair_key) IN (
        SELECT queue, fair_key FROM job_groups WHERE updated_at < ${cutoff} AND fair_key <> ${CLOCK_KEY}
        LIMIT ${chunk} FOR UPDATE SKIP LOCKED)
      AND updated_at < ${cutoff}
      RETURNING 1`;
    return { deleted: rows.length, full: rows.length === chunk };
  });
  return { jobs, batches, events, groups };
}
