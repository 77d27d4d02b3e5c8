import type postgres from "postgres";
import type { Queryable } from "../../db/client.js";
import { tagged } from "../sql.js";
import type { NewJob } from "./rows.js";

// Start-time fair queuing: each (queue, tenant, group) hands out increasing tags, a claim
// takes the lowest. How the clock and the virtual time work: docs/performance-notes.md.

/** Fairness key: claims rotate across tenants and, within a tenant, across group keys. */
export const fairKey = (tenant: string, groupKey: string | null) => `${tenant}\u001f${groupKey ?? ""}`;

/** The queue's clock row in job_groups: a key no group can have (fairKey always holds \u001f). */
export const CLOCK_KEY = "\u001e";
/** The clock is written only when the highest tag passes it by more than this. */
const CLOCK_SLACK = 64;

/**
 * A job submitted with a runAt further ahead than this is held (HELD_TAG in the schema):
 * it stays out of the claim index until promoteDue tags it. Closer ones are claimable as
 * they are; the claim's own "run_at <= now()" makes them wait, at the cost of a short walk.
 */
export const HOLD_AHEAD_MS = 5_000;
export const isHeld = (j: NewJob, now: number) => j.runAt !== null && j.runAt.getTime() > now + HOLD_AHEAD_MS;

/** The tag of the job the claim would take next: where an idle group starts (no credit, no debt). */
export const virtualTime = (q: Queryable, queue: postgres.ParameterOrFragment<never> | string) => q`
  coalesce(
    (SELECT v.fair_tag FROM jobs v
     WHERE v.queue = ${queue} AND v.status = 'queued' AND ${tagged(q, "v")} AND v.run_at <= now()
     ORDER BY v.priority DESC NULLS LAST, v.fair_tag, v.id LIMIT 1),
    (SELECT k.last_tag + ${CLOCK_SLACK} FROM job_groups k WHERE k.queue = ${queue} AND k.fair_key = ${CLOCK_KEY}),
    0)`;

/**
 * CTEs moving each queue's clock up to the highest tag just allocated. The
 * UPDATE locks the clock row only when it is behind by more than the slack.
 */
export const advanceClocks = (q: Queryable, tags: postgres.PendingQuery<postgres.Row[]>) => q`
  tags AS (SELECT queue, max(tag) AS tag FROM (${tags}) t(queue, tag) GROUP BY queue),
  clock_new AS (
    INSERT INTO job_groups (queue, fair_key, last_tag) SELECT queue, ${CLOCK_KEY}, tag FROM tags
    WHERE NOT EXISTS (SELECT 1 FROM job_groups e WHERE e.queue = tags.queue AND e.fair_key = ${CLOCK_KEY})
    ON CONFLICT (queue, fair_key) DO NOTHING
    RETURNING 1
  ),
  clock_up AS (
    UPDATE job_groups k SET last_tag = GREATEST(k.last_tag, tags.tag), updated_at = now()
    FROM tags WHERE k.queue = tags.queue AND k.fair_key = ${CLOCK_KEY} AND k.last_tag < tags.tag - ${CLOCK_SLACK}
    RETURNING 1
  )`;

/** Each (queue, group) once, with how many of the jobs take a tag from it; and each job's group id. */
function groupsOf(jobs: Array<Pick<NewJob, "queue" | "tenant" | "groupKey">>) {
  const keys = new Map<string, { queue: string; key: string; n: number }>();
  const jobKeys = jobs.map((j) => {
    const key = fairKey(j.tenant, j.groupKey);
    const id = `${j.queue}\u001e${key}`;
    const e = keys.get(id) ?? { queue: j.queue, key, n: 0 };
    e.n++;
    keys.set(id, e);
    return id;
  });
  return { groups: [...keys.values()], jobKeys };
}

/**
 * Fairness tags for new (or newly due) jobs, in their order: each (queue, group) gets one
 * range, FIFO within it. Group rows are created and locked in one global order (queue,
 * then a queue's groups before its clock, then key), so two writers sharing groups queue up
 * behind each other instead of deadlocking. A single insert takes its group, then its
 * queue's clock: the same order. Must run inside the caller's transaction.
 */
export async function allocateTags(jobs: Array<Pick<NewJob, "queue" | "tenant" | "groupKey">>, q: Queryable): Promise<number[]> {
  if (jobs.length === 0) return [];
  const { groups, jobKeys } = groupsOf(jobs);
  const queues = [...new Set(groups.map((g) => g.queue))];
  // Several queues: their clocks are locked here too, in the same order, so that the
  // statement below (which moves them in no fixed order) never waits for one. One queue needs
  // nothing: its clock is the last row the statement takes, and locking it always would make
  // every round of coalesced submits to a queue wait for the one before.
  const locked = queues.length > 1 ? [...groups, ...queues.map((queue) => ({ queue, key: CLOCK_KEY }))] : groups;
  const lockQueues = locked.map((g) => g.queue);
  const lockKeys = locked.map((g) => g.key);
  const order = q`ORDER BY queue, fair_key = ${CLOCK_KEY}, fair_key`;
  await q`
      INSERT INTO job_groups (queue, fair_key, last_tag)
      SELECT queue, fair_key, 0 FROM unnest(${lockQueues}::text[], ${lockKeys}::text[]) AS g(queue, fair_key)
      ${order}
      ON CONFLICT (queue, fair_key) DO NOTHING`;
  await q`
      SELECT 1 FROM job_groups jg
      -- The LIMIT changes nothing but the generic plan's guess (one group, not ten), so
      -- PostgreSQL keeps that plan instead of planning a single submit's lock every time.
      JOIN (SELECT * FROM unnest(${lockQueues}::text[], ${lockKeys}::text[]) AS d(queue, fair_key)
            LIMIT ${locked.length}) d
        USING (queue, fair_key)
      ${order}
      FOR UPDATE OF jg`;
  const allocated = await q<{ queue: string; fairKey: string; first: string }[]>`
      WITH a AS (
        UPDATE job_groups jg
        SET last_tag = GREATEST(jg.last_tag + 1, ${virtualTime(q, q`jg.queue`)}) + d.n - 1, updated_at = now()
        FROM unnest(${groups.map((g) => g.queue)}::text[], ${groups.map((g) => g.key)}::text[], ${groups.map((g) => g.n)}::int[]) AS d(queue, fair_key, n)
        WHERE jg.queue = d.queue AND jg.fair_key = d.fair_key
        RETURNING jg.queue, jg.fair_key, jg.last_tag, (jg.last_tag - d.n + 1)::text AS first
      ),
      ${advanceClocks(q, q`SELECT queue, last_tag FROM a`)}
      SELECT queue, fair_key, first FROM a`;
  const next = new Map(allocated.map((a) => [`${a.queue}\u001e${a.fairKey}`, Number(a.first)]));
  return jobKeys.map((id) => {
    const t = next.get(id)!;
    next.set(id, t + 1);
    return t;
  });
}
