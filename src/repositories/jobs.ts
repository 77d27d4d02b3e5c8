import type postgres from "postgres";
import type { Queryable } from "../db/client.js";
import { HELD_TAG, PREPARING_TAG } from "../db/schema.js";
import { uuidv7 } from "../domain/ids.js";
import type { JobStatus } from "../domain/jobs.js";
import { finaliseTail, heldTag, heldTagValue, jobGuard, tagged } from "./sql.js";

export interface JobRow {
  id: string;
  tenant: string;
  queue: string;
  kind: string;
  payload: unknown;
  priority: number;
  groupKey: string | null;
  fairTag: string;
  runAt: Date;
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  leaseToken: string | null;
  leaseExpiresAt: Date | null;
  workerId: string | null;
  cancelRequested: boolean;
  result: unknown;
  lastError: unknown;
  batchId: string | null;
  generation: number;
  idempotencyKey: string | null;
  requestHash: string | null;
  webhookUrl: string | null;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  version: number;
}

/** A finalised job, lean: what the acknowledgement and the metrics need. */
export type DoneRow = Pick<JobRow, "id" | "leaseToken" | "status" | "tenant" | "queue" | "kind" | "startedAt" | "finishedAt" | "updatedAt">;

export interface NewJob {
  /** Chosen by the caller when it must tell rows of one multi-row insert apart; else made here (uuidv7). */
  id?: string;
  tenant: string;
  queue: string;
  kind: string;
  payload: unknown;
  priority: number;
  groupKey: string | null;
  runAt: Date | null;
  maxAttempts: number;
  webhookUrl: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  batchId: string | null;
  /** A job of an open batch: not claimable, so no tag, until the batch is sealed. */
  untilSealed?: boolean;
}

export interface ClaimFilter {
  queues: string[];
  kinds?: string[] | undefined;
  /** null: a platform worker (tenant `*`) that may claim any tenant's jobs. */
  tenant: string | null;
  workerId: string;
  leaseSeconds: number;
  max: number;
}

/** Fairness key: claims rotate across tenants and, within a tenant, across group keys. */
export const fairKey = (tenant: string, groupKey: string | null) => `${tenant}\u001f${groupKey ?? ""}`;

/**
 * The queue's clock lives in job_groups under a key no group can have
 * (fairKey always contains \u001f). It is written only when the highest tag
 * handed out passes it by more than CLOCK_SLACK, so it is a rarely locked row,
 * and clock + CLOCK_SLACK is never below any tag of the queue.
 */
export const CLOCK_KEY = "\u001e";
const CLOCK_SLACK = 64;

/**
 * The virtual time of a queue: the tag of the job the claim would take next.
 * A group that was idle starts there, so past volume earns it neither credit
 * nor debt (start-time fair queuing). Jobs not yet due do not count: one
 * scheduled for tomorrow would pin the virtual time to its old tag, and every
 * group active since would carry debt. Jobs of an open batch do not count
 * either: they take their tags when sealed, from that moment's virtual time,
 * so they interleave with what was submitted meanwhile. With none of these the queue's clock
 * (an upper bound of its tags) stands in, not 0: after the queue drains, a
 * key with a long history would otherwise queue behind a newcomer's flood.
 */
/**
 * A job submitted with a runAt further ahead than this is held (HELD_TAG in the schema):
 * it stays out of the claim index until promoteDue tags it. Closer ones are claimable as
 * they are; the claim's own "run_at <= now()" makes them wait, at the cost of a short walk.
 */
export const HOLD_AHEAD_MS = 5_000;
const isHeld = (j: NewJob, now: number) => j.runAt !== null && j.runAt.getTime() > now + HOLD_AHEAD_MS;


const virtualTime = (q: Queryable, queue: postgres.ParameterOrFragment<never> | string) => q`
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
const advanceClocks = (q: Queryable, tags: postgres.PendingQuery<postgres.Row[]>) => q`
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

/**
 * A LIMIT that is a parameter makes PostgreSQL assume 10 % of the table, so the
 * claim's generic plan never looks cheap enough and every claim is planned
 * again (a third of a small claim's time). Small limits are written into the
 * text instead: each gets a statement whose cached generic plan is reused. Above
 * 32 rows planning is a small share of the work, and the number of distinct
 * prepared statements per connection stays bounded.
 */
const limitOf = (q: Queryable, n: number) => (Number.isInteger(n) && n >= 1 && n <= 32 ? q.unsafe(String(n)) : q`${n}`);

export function jobsRepository(sql: Queryable) {
  /**
   * The acknowledgement's CTEs: completed_items (each item's row locked if still leased by its
   * token), j (those rows made succeeded), then the finalisation tail (batch counts, events).
   */
  function completeCtes(items: Array<{ id: string; leaseToken: string; result: unknown }>, tenant: string | null, q: Queryable) {
    const ids = items.map((i) => i.id);
    return q`completed_items AS (
          -- The guard is checked here, on each row as it is locked (a row changed meanwhile is
          -- re-read and re-checked), and the lock holds it until commit, so the UPDATE below
          -- changes exactly the rows that passed. Rows are locked in id order, as every
          -- multi-row writer does, so two of them cannot deadlock.
          --
          -- Written so its plan cannot depend on statistics: items are sorted and each one
          -- looks up its row by primary key (a LATERAL with LIMIT is always a per-item probe).
          -- With the guard in a plain join instead, statistics taken while every job was
          -- queued rate "status = running" at one row, and the planner pairs a scan of jobs
          -- with the items in a nested loop: 250,000 comparisons for 500 items, 5 x slower.
          -- A plain UPDATE ... FROM the sorted items, with the guard in its WHERE, saves a probe
          -- per item, but on a 60,000-job table its custom plan (the first five runs on every
          -- connection) was a scan of jobs compared with all 500 items: 749,500 comparisons.
          SELECT l.id, i.result
          FROM (SELECT * FROM unnest(${ids}::uuid[], ${items.map((i) => i.leaseToken)}::uuid[],
                                     ${items.map((i) => JSON.stringify(i.result ?? null))}::text[]::jsonb[])
                  AS t(id, lease_token, result)
                ORDER BY id
                -- Changes no result. A LIMIT parameter makes the generic plan count on one item
                -- (10 for a bare unnest), so PostgreSQL keeps that plan, one probe per item like
                -- the custom ones, instead of planning this statement again on every call: for
                -- acknowledgements of a few items, planning took three times the execution.
                LIMIT ${items.length}) i
          CROSS JOIN LATERAL (
            SELECT jobs.id FROM jobs
            WHERE jobs.id = i.id AND ${jobGuard(q, "complete", "jobs.status")} AND jobs.lease_token = i.lease_token
              ${tenant === null ? q`` : q`AND jobs.tenant = ${tenant}`}
            LIMIT 1 FOR NO KEY UPDATE OF jobs
          ) l
        ), j AS (
          UPDATE jobs SET status = 'succeeded', result = completed_items.result,
                 finished_at = now(), updated_at = now(), version = jobs.version + 1
          -- Each locked row found again by primary key, in both plans: = ANY of a one-element
          -- array can be an index condition but neither hashed nor merged, and is rated like
          -- the equality (one row). As "=" the custom plan for 500 items on 30,000 jobs hashed
          -- the items and read all of jobs; as a range (id >= x AND id <= x) it was rated at 1/9
          -- of the table per item, and on PostgreSQL 15 with wide rows it scanned jobs (issue 31).
          FROM completed_items WHERE jobs.id = ANY(ARRAY[completed_items.id])
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j),
        ${finaliseTail(q)}`;
  }

  /** The claim's CTEs: claimable (locked, in claim order), then the lease written on them. */
  function claimParts(f: Omit<ClaimFilter, "workerId" | "max">, takers: Array<{ workerId: string; max: number }>, q: Queryable) {
    const total = takers.reduce((n, t) => n + t.max, 0);
    const queueCond = f.queues.length === 1 ? q`j.queue = ${f.queues[0]!}` : q`j.queue = ANY(${f.queues}::text[])`;
    // (test/integration/plan-stability.test.ts finds claims by the name claimable.)
    const claimable = q`
      claimable AS (
        SELECT j.id, j.priority, j.fair_tag FROM jobs j
        WHERE ${queueCond} AND ${jobGuard(q, "claim", "j.status")} AND ${tagged(q, "j")} AND j.run_at <= now()
          ${f.kinds && f.kinds.length > 0 ? q`AND j.kind = ANY(${f.kinds}::text[])` : q``}
          ${f.tenant === null ? q`` : q`AND j.tenant = ${f.tenant}`}
          AND (j.batch_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM batches b WHERE b.id = j.batch_id AND b.status = 'preparing'))
        ORDER BY j.priority DESC NULLS LAST, j.fair_tag, j.id
        LIMIT ${limitOf(q, total)}
        FOR UPDATE OF j SKIP LOCKED
      )`;
    const lease = q`status = 'running', attempts = jobs.attempts + 1, lease_token = gen_random_uuid(),
               lease_expires_at = now() + make_interval(secs => ${f.leaseSeconds}),
               started_at = now(), updated_at = now(), version = jobs.version + 1`;
    // besideFinalisation: the statement also finalises jobs (fin_counts). A batch with a running
    // job left pending when its first job was claimed, so the two never meet; the guard keeps one
    // statement from ever updating a batch row twice, which PostgreSQL would not do reliably.
    const startBatches = (besideFinalisation = false) => q`
      started AS (
        UPDATE batches SET status = 'running', started_at = now(), updated_at = now(), version = batches.version + 1
        WHERE batches.id IN (SELECT batch_id FROM u WHERE batch_id IS NOT NULL) AND batches.status = 'pending'
          ${besideFinalisation ? q`AND batches.id NOT IN (SELECT batch_id FROM fin_counts)` : q``}
        RETURNING 1
      )`;
    /** Several takers: row rn (in claim order) carries the worker id of the taker it goes to. */
    const forTakers = (besideFinalisation = false) => {
      const workerIds = takers.flatMap((t) => Array<string>(t.max).fill(t.workerId));
      return q`
      ${claimable}, n AS (
        SELECT id, (row_number() OVER (ORDER BY priority DESC NULLS LAST, fair_tag, id))::int AS rn FROM claimable
      ), u AS (
        UPDATE jobs SET ${lease}, worker_id = (${workerIds}::text[])[n.rn]
        FROM n WHERE jobs.id = n.id AND jobs.id = ANY(ARRAY(SELECT id FROM claimable))
        RETURNING jobs.*, n.rn
      ), ${startBatches(besideFinalisation)}`;
    };
    return { claimable, lease, startBatches, forTakers };
  }

  /** Taker i gets the next max_i rows in claim order. rn stays on the rows: copying every row without it cost more than the claim's parsing. */
  function byTaker(rows: Array<JobRow & { rn: number }>, takers: Array<{ max: number }>): JobRow[][] {
    const sorted: JobRow[] = [...rows].sort((a, b) => a.rn - b.rn);
    const out: JobRow[][] = [];
    let k = 0;
    for (const t of takers) {
      out.push(sorted.slice(k, k + t.max));
      k += t.max;
    }
    return out;
  }

  /**
   * The same claim for several takers at once (coalesced polls): one statement
   * leases up to the sum of their `max`, in claim order, and taker i gets the
   * next `max_i` rows with its own worker id written on them.
   */
  async function claimNextFor(
    f: Omit<ClaimFilter, "workerId" | "max">,
    takers: Array<{ workerId: string; max: number }>,
    q: Queryable = sql,
  ): Promise<JobRow[][]> {
    const { claimable, lease, startBatches, forTakers } = claimParts(f, takers, q);
    // = ANY keeps even the generic plan on the primary key (LIMIT is a parameter, so the
    // planner cannot tell how few rows the CTE holds); a plan it can reuse saves a replan per claim.
    // (Not sameRow: PostgreSQL rates a range of unknown bounds at 0.5 % of the table, so with a
    // million retained jobs the generic plan looked costly and every claim was planned again.)
    if (takers.length === 1) {
      // One taker (a worker's own claim, or a poll with no company): its worker id as one
      // value, not one array element per row, and the claim order from a sort of the result.
      return [
        await q<JobRow[]>`
          WITH ${claimable}, u AS (
            UPDATE jobs SET ${lease}, worker_id = ${takers[0]!.workerId}
            WHERE jobs.id = ANY(ARRAY(SELECT id FROM claimable))
            RETURNING jobs.*
          ), ${startBatches()}
          SELECT * FROM u ORDER BY priority DESC NULLS LAST, fair_tag, id`,
      ];
    }
    return byTaker(await q<Array<JobRow & { rn: number }>>`WITH ${forTakers()} SELECT * FROM u`, takers);
  }

  /**
   * Fairness tags for new (or newly due) jobs, in their order: each (queue, group) gets one
   * range, FIFO within it. Group rows are created and locked in one global order (queue,
   * then a queue's groups before its clock, then key), so two writers sharing groups queue up
   * behind each other instead of deadlocking. A single insert takes its group, then its
   * queue's clock: the same order. Must run inside the caller's transaction.
   */
  async function allocateTags(jobs: Array<Pick<NewJob, "queue" | "tenant" | "groupKey">>, q: Queryable): Promise<number[]> {
    if (jobs.length === 0) return [];
    const keys = new Map<string, { queue: string; key: string; n: number }>();
    const jobKeys = jobs.map((j) => {
      const key = fairKey(j.tenant, j.groupKey);
      const id = `${j.queue}\u001e${key}`;
      const e = keys.get(id) ?? { queue: j.queue, key, n: 0 };
      e.n++;
      keys.set(id, e);
      return id;
    });
    const groups = [...keys.values()];
    const queues = [...new Set(groups.map((g) => g.queue))];
    // Several queues: their clocks are locked here too, in the same order, so that the
    // statement below (which moves them in no fixed order) never waits for one. Two promotions
    // of jobs in the same queues used to be able to take two clocks in opposite orders. One
    // queue needs nothing: its clock is the last row the statement takes, and locking it
    // always would make every round of coalesced submits to a queue wait for the one before.
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

  return {
    /** Inserts one job; with an idempotency key that exists already, inserts nothing and returns null. */
    async insert(j: NewJob, q: Queryable = sql): Promise<JobRow | null> {
      // A held job takes no tag from its group (and moves no clock): promoteDue tags it when due.
      const tagged = j.untilSealed
        ? q`g AS (SELECT ${PREPARING_TAG}::bigint AS last_tag)`
        : isHeld(j, Date.now())
        ? q`g AS (SELECT ${HELD_TAG}::bigint AS last_tag)`
        : q`g AS (
            INSERT INTO job_groups (queue, fair_key, last_tag)
            VALUES (${j.queue}, ${fairKey(j.tenant, j.groupKey)}, ${virtualTime(q, j.queue)})
            ON CONFLICT (queue, fair_key) DO UPDATE
              SET last_tag = GREATEST(job_groups.last_tag + 1, EXCLUDED.last_tag), updated_at = now()
            RETURNING queue, last_tag
          ),
          ${advanceClocks(q, q`SELECT queue, last_tag FROM g`)}`;
      const rows = await q<JobRow[]>`
        WITH ${tagged}
        INSERT INTO jobs (id, tenant, queue, kind, payload, priority, group_key, fair_tag, run_at,
                          max_attempts, webhook_url, idempotency_key, request_hash, batch_id)
        SELECT ${j.id ?? uuidv7(Date.now())}::uuid, ${j.tenant}, ${j.queue}, ${j.kind}, ${JSON.stringify(j.payload)}::text::jsonb, ${j.priority},
               ${j.groupKey}, g.last_tag, coalesce(${j.runAt}::timestamptz, now()), ${j.maxAttempts},
               ${j.webhookUrl}, ${j.idempotencyKey}, ${j.requestHash}, ${j.batchId}
        FROM g
        ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING
        RETURNING *`;
      return rows[0] ?? null;
    },

    /**
     * Multi-row insert for batches: tags for each (queue, group) are allocated
     * as one range, then every job goes in with a single INSERT … SELECT unnest.
     * Must run inside the caller's transaction.
     */
    async insertMany(jobs: NewJob[], q: Queryable): Promise<JobRow[]> {
      if (jobs.length === 0) return [];
      const now = Date.now();
      const fixed = jobs.map((j) => (j.untilSealed ? PREPARING_TAG : isHeld(j, now) ? HELD_TAG : null));
      const allocated = await allocateTags(
        jobs.filter((_, i) => fixed[i] === null),
        q,
      );
      let k = 0;
      const tags = fixed.map((t) => t ?? allocated[k++]!);
      const col = <T>(f: (j: NewJob) => T) => jobs.map(f);
      return q<JobRow[]>`
        INSERT INTO jobs (id, tenant, queue, kind, payload, priority, group_key, fair_tag, run_at,
                          max_attempts, webhook_url, batch_id)
        SELECT t.id, t.tenant, t.queue, t.kind, t.payload, t.priority, t.group_key, t.fair_tag,
               coalesce(t.run_at, now()), t.max_attempts, t.webhook_url, t.batch_id
        FROM unnest(
          ${col((j) => j.id ?? uuidv7(now))}::uuid[],
          ${col((j) => j.tenant)}::text[], ${col((j) => j.queue)}::text[], ${col((j) => j.kind)}::text[],
          ${col((j) => JSON.stringify(j.payload))}::text[]::jsonb[], ${col((j) => j.priority)}::int[],
          ${col((j) => j.groupKey)}::text[], ${tags}::bigint[], ${col((j) => j.runAt?.toISOString() ?? null)}::timestamptz[],
          ${col((j) => j.maxAttempts)}::int[], ${col((j) => j.webhookUrl)}::text[], ${col((j) => j.batchId)}::uuid[]
        ) AS t(id, tenant, queue, kind, payload, priority, group_key, fair_tag, run_at, max_attempts, webhook_url, batch_id)
        RETURNING *`;
    },

    /** Jobs per queue and status (GET /v1/queues, the queue-depth gauge). Reads every retained job. */
    async countByQueue(tenant: string | null, q: Queryable = sql) {
      return q<{ queue: string; status: JobStatus; n: number }[]>`
        SELECT queue, status, count(*)::int AS n FROM jobs
        ${tenant === null ? q`` : q`WHERE tenant = ${tenant}`}
        GROUP BY queue, status ORDER BY queue`;
    },

    /**
     * Per queue, the age of the oldest claimable job: due, tagged or held, not in an open
     * batch. Written as the claim index's and the held index's predicates, so it reads the
     * queued jobs only, not the retained history (1M finished jobs: 100 ms as one filter).
     */
    async oldestClaimableByQueue(tenant: string | null, q: Queryable = sql) {
      const t = tenant === null ? q`` : q`AND tenant = ${tenant}`;
      return q<{ queue: string; age: number }[]>`
        SELECT queue, extract(epoch FROM now() - min(run_at))::float8 AS age FROM (
          SELECT queue, run_at FROM jobs
          WHERE status = 'queued' AND ${tagged(q, "jobs")} AND run_at <= now() ${t}
          UNION ALL
          SELECT queue, run_at FROM jobs
          WHERE status = 'queued' AND ${heldTag(q, "jobs")}
            AND run_at <= now() ${t}
        ) due GROUP BY queue`;
    },

    async findById(id: string, tenant: string | null, q: Queryable = sql): Promise<JobRow | null> {
      const rows = await q<JobRow[]>`
        SELECT * FROM jobs WHERE id = ${id} ${tenant === null ? q`` : q`AND tenant = ${tenant}`}`;
      return rows[0] ?? null;
    },

    async findByIdempotencyKey(tenant: string, key: string, q: Queryable = sql): Promise<JobRow | null> {
      const rows = await q<JobRow[]>`SELECT * FROM jobs WHERE tenant = ${tenant} AND idempotency_key = ${key}`;
      return rows[0] ?? null;
    },

    async list(
      f: {
        tenant: string | null;
        queue?: string | undefined;
        status?: JobStatus | undefined;
        kind?: string | undefined;
        batchId?: string | undefined;
        limit: number;
        /** Keyset position: created_at as PostgreSQL text (microseconds kept) and id. */
        after?: { createdAt: string; id: string } | undefined;
      },
      q: Queryable = sql,
    ): Promise<Array<JobRow & { cursorTs: string }>> {
      // The order comes from job_list (written once per job, see the schema), each entry
      // then finds its job by primary key.
      const conds = [
        f.tenant === null ? null : q`l.tenant = ${f.tenant}`,
        f.queue === undefined ? null : q`j.queue = ${f.queue}`,
        f.status === undefined ? null : q`j.status = ${f.status}`,
        f.kind === undefined ? null : q`j.kind = ${f.kind}`,
        f.batchId === undefined ? null : q`j.batch_id = ${f.batchId}`,
        // Sent as text: postgres.js rounds a timestamptz parameter through a JS Date (milliseconds).
        f.after === undefined ? null : q`(l.created_at, l.id) < (${f.after.createdAt}::text::timestamptz, ${f.after.id}::uuid)`,
      ].filter((c) => c !== null);
      const where = conds.reduce((acc, c, i) => (i === 0 ? q`WHERE ${c}` : q`${acc} AND ${c}`), q``);
      return q<Array<JobRow & { cursorTs: string }>>`
        SELECT j.*, j.created_at::text AS cursor_ts FROM job_list l JOIN jobs j ON j.id = l.id ${where}
        ORDER BY l.created_at DESC NULLS LAST, l.id DESC NULLS LAST LIMIT ${f.limit}`;
    },

    /**
     * queued → running for up to `max` jobs, one statement. SKIP LOCKED makes
     * concurrent claimers pass over each other's candidates instead of waiting
     * or double-claiming; the CTE keeps the planner from re-running the SELECT.
     * Jobs of a `preparing` batch are excluded here, in the claim itself.
     */
    async claimNext(f: ClaimFilter, q: Queryable = sql): Promise<JobRow[]> {
      const { workerId, max, ...filter } = f;
      return (await claimNextFor(filter, [{ workerId, max }], q))[0]!;
    },

    claimNextFor,

    /**
     * A poll's acknowledgements and the claim of its next jobs in one statement: one round trip,
     * one executor start and one commit instead of two of each. The rows are disjoint (the
     * acknowledged jobs are running, the claimed ones queued, in one snapshot), so a job
     * completed here is never claimed here. Acknowledgements come back lean (id, lease token,
     * status), as completeManyIfLeased(lean) does; claims as claimNextFor does.
     */
    async completeAndClaimFor(
      items: Array<{ id: string; leaseToken: string; result: unknown }>,
      f: Omit<ClaimFilter, "workerId" | "max">,
      takers: Array<{ workerId: string; max: number }>,
      q: Queryable = sql,
    ): Promise<{ completed: DoneRow[]; claimed: JobRow[][] }> {
      type Acked = [string, string, JobStatus, string, string, string, string | null, string | null, string];
      type Row = JobRow & { rn: number | null; acked: Acked[] | null };
      // One row at least (the LEFT JOIN), so the acknowledgements come back when nothing was
      // claimed; they ride on the first row only.
      const rows = await q<Row[]>`
        WITH ${completeCtes(items, f.tenant, q)}, ${claimParts(f, takers, q).forTakers(true)}
        SELECT u.*, CASE WHEN u.rn IS NULL OR u.rn = 1 THEN
                 (SELECT coalesce(json_agg(json_build_array(j.id, j.lease_token, j.status, j.tenant, j.queue, j.kind,
                   j.started_at, j.finished_at, j.updated_at)), '[]'::json) FROM j)
               END AS acked
        FROM (SELECT) one LEFT JOIN u ON true`;
      const acked = rows.find((r) => r.acked !== null)?.acked ?? [];
      return {
        completed: acked.map(([id, leaseToken, status, tenant, queue, kind, startedAt, finishedAt, updatedAt]) => ({
          id, leaseToken, status, tenant, queue, kind,
          startedAt: startedAt === null ? null : new Date(startedAt),
          finishedAt: finishedAt === null ? null : new Date(finishedAt),
          updatedAt: new Date(updatedAt),
        })),
        claimed: byTaker(rows.filter((r): r is Row & { rn: number } => r.rn !== null), takers),
      };
    },

    /** Claim of one named job, optionally only at a given version (If-Match). */
    async claimIfQueued(
      id: string,
      f: { tenant: string | null; workerId: string; leaseSeconds: number; version?: number | undefined },
      q: Queryable = sql,
    ): Promise<JobRow | null> {
      const rows = await q<JobRow[]>`
        WITH u AS (
          UPDATE jobs SET status = 'running', attempts = attempts + 1, lease_token = gen_random_uuid(),
                 lease_expires_at = now() + make_interval(secs => ${f.leaseSeconds}), worker_id = ${f.workerId},
                 started_at = now(), updated_at = now(), version = version + 1
          WHERE id = ${id} AND ${jobGuard(q, "claim")} AND run_at <= now()
            ${f.tenant === null ? q`` : q`AND tenant = ${f.tenant}`}
            ${f.version === undefined ? q`` : q`AND version = ${f.version}`}
            AND (batch_id IS NULL OR NOT EXISTS (
              SELECT 1 FROM batches b WHERE b.id = jobs.batch_id AND b.status = 'preparing'))
          RETURNING *
        ), started AS (
          UPDATE batches SET status = 'running', started_at = now(), updated_at = now(), version = batches.version + 1
          WHERE batches.id IN (SELECT batch_id FROM u WHERE batch_id IS NOT NULL) AND batches.status = 'pending'
          RETURNING 1
        )
        SELECT * FROM u`;
      return rows[0] ?? null;
    },

    /** queued → cancelled. */
    async cancelIfQueued(id: string, tenant: string | null, version: number | undefined, q: Queryable = sql) {
      const rows = await q<JobRow[]>`
        WITH j AS (
          UPDATE jobs SET status = 'cancelled', finished_at = now(), updated_at = now(), version = version + 1
          WHERE id = ${id} AND ${jobGuard(q, "cancel")}
            ${tenant === null ? q`` : q`AND tenant = ${tenant}`}
            ${version === undefined ? q`` : q`AND version = ${version}`}
          RETURNING *
        ), fin AS (SELECT * FROM j),
        ${finaliseTail(q)}
        SELECT * FROM j`;
      return rows[0] ?? null;
    },

    /** running → running with cancelRequested; the lease holder learns of it on heartbeat. */
    async requestCancelIfRunning(id: string, tenant: string | null, version: number | undefined, q: Queryable = sql) {
      const rows = await q<JobRow[]>`
        UPDATE jobs SET cancel_requested = true,
               -- A repeated request changes nothing, so neither version nor updated_at moves.
               updated_at = CASE WHEN cancel_requested THEN updated_at ELSE now() END,
               version = version + (CASE WHEN cancel_requested THEN 0 ELSE 1 END)
        WHERE id = ${id} AND ${jobGuard(q, "requestCancel")}
          ${tenant === null ? q`` : q`AND tenant = ${tenant}`}
          ${version === undefined ? q`` : q`AND version = ${version}`}
        RETURNING *`;
      return rows[0] ?? null;
    },

    async heartbeatIfLeased(id: string, leaseToken: string, leaseSeconds: number, tenant: string | null, q: Queryable = sql) {
      const rows = await q<JobRow[]>`
        UPDATE jobs SET lease_expires_at = now() + make_interval(secs => ${leaseSeconds}),
               updated_at = now(), version = version + 1
        WHERE id = ${id} AND ${jobGuard(q, "heartbeat")} AND lease_token = ${leaseToken}
          ${tenant === null ? q`` : q`AND tenant = ${tenant}`}
        RETURNING *`;
      return rows[0] ?? null;
    },

    /** running → succeeded, fenced by the lease token; batch count and outbox in the same statement. */
    async completeIfLeased(id: string, leaseToken: string, result: unknown, tenant: string | null, q: Queryable = sql) {
      const rows = await q<JobRow[]>`
        WITH j AS (
          UPDATE jobs SET status = 'succeeded', result = ${JSON.stringify(result ?? null)}::text::jsonb,
                 finished_at = now(), updated_at = now(), version = version + 1
          WHERE id = ${id} AND ${jobGuard(q, "complete")} AND lease_token = ${leaseToken}
            ${tenant === null ? q`` : q`AND tenant = ${tenant}`}
          RETURNING *
        ), fin AS (SELECT * FROM j),
        ${finaliseTail(q)}
        SELECT * FROM j`;
      return rows[0] ?? null;
    },

    /**
     * Many completes in one statement (the batch acknowledgement). Each item is
     * fenced by its own token; the ones that lost are simply absent from the result.
     */
    async completeManyIfLeased<Lean extends boolean = false>(
      items: Array<{ id: string; leaseToken: string; result: unknown }>,
      tenant: string | null,
      q: Queryable = sql,
      /** Only id, lease token and status back: a worker that needs no more parses a tenth of the bytes. */
      lean?: Lean,
    ): Promise<Lean extends true ? DoneRow[] : JobRow[]> {
      if (items.length === 0) return [];
      // (test/integration/plan-stability.test.ts finds this statement by the name completed_items.)
      return q<JobRow[]>`
        WITH ${completeCtes(items, tenant, q)}
        SELECT ${lean ? q`id, lease_token, status, tenant, queue, kind, started_at, finished_at, updated_at` : q`*`} FROM j`;
    },

    /**
     * running → queued (retry after backoff) | failed | cancelled, decided in
     * the statement from the row's own attempts and cancelRequested, so no
     * read-then-write window exists. `jitter` in [0,1) drives full-jitter backoff.
     */
    async failIfLeased(
      id: string,
      a: {
        leaseToken: string;
        error: unknown;
        retryable: boolean;
        retryAfterSeconds?: number | undefined;
        backoffBaseMs: number;
        backoffMaxMs: number;
        jitter: number;
        tenant: string | null;
      },
      q: Queryable = sql,
    ) {
      const retryDelayMs =
        a.retryAfterSeconds !== undefined
          ? q`${a.retryAfterSeconds * 1000}::float8`
          : q`${a.jitter}::float8 * LEAST(${a.backoffMaxMs}::float8, ${a.backoffBaseMs}::float8 * power(2, GREATEST(attempts - 1, 0)))`;
      // Decided from the locked row's latest version (not a prior read), so a
      // cancel request that commits while we wait for the lock is honoured.
      const next = q`(CASE WHEN jobs.cancel_requested THEN 'cancelled'::job_status
                           WHEN ${a.retryable}::boolean AND jobs.attempts < jobs.max_attempts THEN 'queued'::job_status
                           ELSE 'failed'::job_status END)`;
      const rows = await q<JobRow[]>`
        WITH j AS (
          UPDATE jobs SET status = ${next},
                 last_error = ${JSON.stringify(a.error)}::text::jsonb,
                 run_at = CASE WHEN ${next} = 'queued' THEN now() + make_interval(secs => (${retryDelayMs}) / 1000.0) ELSE jobs.run_at END,
                 -- A retry further ahead than HOLD_AHEAD_MS is held like a scheduled submit, so an
                 -- outage that sends many jobs into long backoff does not slow every claim.
                 fair_tag = CASE WHEN ${next} = 'queued' AND (${retryDelayMs}) > ${HOLD_AHEAD_MS}
                                 THEN ${heldTagValue(q)} ELSE jobs.fair_tag END,
                 lease_token = CASE WHEN ${next} = 'queued' THEN NULL ELSE jobs.lease_token END,
                 lease_expires_at = CASE WHEN ${next} = 'queued' THEN NULL ELSE jobs.lease_expires_at END,
                 finished_at = CASE WHEN ${next} = 'queued' THEN NULL ELSE now() END,
                 updated_at = now(), version = jobs.version + 1
          WHERE jobs.id = ${id} AND ${jobGuard(q, "fail", "jobs.status")} AND jobs.lease_token = ${a.leaseToken}
            ${a.tenant === null ? q`` : q`AND jobs.tenant = ${a.tenant}`}
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j WHERE status IN ('failed', 'cancelled')),
        ${finaliseTail(q)}
        SELECT * FROM j`;
      return rows[0] ?? null;
    },

    /**
     * Held jobs that are due get their fairness tag, as a submit at this moment would give
     * them, and so enter the claim index. Up to `limit` per call, earliest first; SKIP LOCKED
     * lets every process run it at once. Must run inside the caller's transaction (the
     * rows stay locked from the pick to the update). Returns how many, and their queues.
     */
    async promoteDue(limit: number, q: Queryable): Promise<{ promoted: number; queues: string[] }> {
      const due = await q<Array<{ id: string; tenant: string; queue: string; groupKey: string | null }>>`
        SELECT id, tenant, queue, group_key FROM jobs
        WHERE status = 'queued' AND ${heldTag(q, "jobs")}
          AND run_at <= now()
          -- Not a job of a batch still being built: cancelling such a batch skips locked jobs
          -- (only a single-job cancel can hold one), so a job locked here would stay queued
          -- and run after its batch was cancelled. Such jobs carry PREPARING_TAG and are not
          -- read here at all; this guards those an older release inserted.
          AND (batch_id IS NULL OR NOT EXISTS (
            SELECT 1 FROM batches b WHERE b.id = jobs.batch_id AND b.status = 'preparing'))
        ORDER BY run_at, id LIMIT ${limit}
        FOR UPDATE SKIP LOCKED`;
      if (due.length === 0) return { promoted: 0, queues: [] };
      const tags = await allocateTags(due, q);
      await q`
        UPDATE jobs SET fair_tag = t.tag
        FROM unnest(${due.map((d) => d.id)}::uuid[], ${tags}::bigint[]) AS t(id, tag)
        -- Not a state change (queued stays queued): the guard is the claim's, "still claimable".
        -- = ANY(ARRAY[t.id]): a primary-key probe per row in either plan (see completeCtes);
        -- as "=" a custom plan for 1,000 promotions on 31,000 jobs hashed them and read all of jobs.
        WHERE jobs.id = ANY(ARRAY[t.id]) AND ${jobGuard(q, "claim", "jobs.status")}`;
      return { promoted: due.length, queues: [...new Set(due.map((d) => d.queue))] };
    },

    /**
     * The lease reaper: every running job whose lease expired goes back to
     * queued, or to failed/cancelled, in ONE statement. SKIP LOCKED lets every
     * replica run it at once; a job being completed right now is skipped, and
     * the guard re-checks the lease so a heartbeat that just landed wins.
     */
    async reapExpired(limit: number, q: Queryable = sql): Promise<JobRow[]> {
      return q<JobRow[]>`
        WITH c AS (
          SELECT id FROM jobs
          WHERE ${jobGuard(q, "reap")} AND lease_expires_at < now()
          ORDER BY lease_expires_at
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        ), j AS (
          UPDATE jobs SET
            status = CASE WHEN jobs.cancel_requested THEN 'cancelled'::job_status
                          WHEN jobs.attempts < jobs.max_attempts THEN 'queued'::job_status
                          ELSE 'failed'::job_status END,
            -- Also when the job ends cancelled: the error of an attempt before would let the
            -- holder's late fail with that same error pass for a replay of its own call.
            last_error = jsonb_build_object('message', 'lease expired', 'code', 'lease_expired'),
            lease_token = CASE WHEN jobs.cancel_requested OR jobs.attempts >= jobs.max_attempts THEN jobs.lease_token END,
            lease_expires_at = CASE WHEN jobs.cancel_requested OR jobs.attempts >= jobs.max_attempts THEN jobs.lease_expires_at END,
            finished_at = CASE WHEN jobs.cancel_requested OR jobs.attempts >= jobs.max_attempts THEN now() END,
            updated_at = now(), version = jobs.version + 1
          FROM c
          WHERE jobs.id = c.id AND ${jobGuard(q, "reap", "jobs.status")} AND jobs.lease_expires_at < now()
          RETURNING jobs.*
        ), fin AS (SELECT * FROM j WHERE status IN ('failed', 'cancelled')),
        ${finaliseTail(q)}
        SELECT * FROM j`;
    },
  };
}

export type JobsRepository = ReturnType<typeof jobsRepository>;

/**
 * running → queued for leases whose poll answer never reached the client (the connection closed
 * before the response was written). The attempt never ran, so it is given back (attempts - 1).
 * Fenced by each lease token: a job completed, failed, reaped or re-claimed meanwhile is left
 * alone, and so is one whose cancel was requested (the reaper ends it cancelled at lease expiry).
 * Rows are locked in id order, as every multi-row writer does.
 */
export async function releaseIfLeased(q: Queryable, items: Array<{ id: string; leaseToken: string }>): Promise<JobRow[]> {
  if (items.length === 0) return [];
  return q<JobRow[]>`
    WITH l AS (
      SELECT jobs.id FROM jobs
      JOIN unnest(${items.map((i) => i.id)}::uuid[], ${items.map((i) => i.leaseToken)}::uuid[]) AS t(id, lease_token)
        ON jobs.id = t.id AND jobs.lease_token = t.lease_token
      WHERE ${jobGuard(q, "release", "jobs.status")} AND NOT jobs.cancel_requested
      ORDER BY jobs.id
      FOR NO KEY UPDATE OF jobs
    )
    UPDATE jobs SET status = 'queued', attempts = GREATEST(jobs.attempts - 1, 0), lease_token = NULL,
           lease_expires_at = NULL, updated_at = now(), version = jobs.version + 1
    FROM l WHERE jobs.id = l.id
    RETURNING jobs.*`;
}
