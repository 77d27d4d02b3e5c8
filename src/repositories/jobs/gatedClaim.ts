import type { Queryable } from "../../db/client.js";
import { holdsSlot, jobGuard, limitOf, limits, notExpired, notInOpenBatch, scoped, tagged } from "../sql.js";
import type { SharedClaimFilter } from "./rows.js";

// The claim of queues with settings (queue controls). Each limit is decided here, in the
// statement that leases: the candidates are walked unlocked, then jobline_gate (drizzle/0009)
// locks the queues' settings rows and counts in a snapshot taken after the lock, so claims
// of one (tenant, queue) decide one after another and each sees the ones before it.
// Why and how: docs/queue-controls.md.

const ORDER = "priority DESC NULLS LAST, fair_tag, id";

const queueIs = (q: Queryable, f: SharedClaimFilter, alias: string) =>
  f.queues.length === 1 ? q`${q.unsafe(alias)}.queue = ${f.queues[0]!}` : q`${q.unsafe(alias)}.queue = ANY(${f.queues}::text[])`;

/** The settings rows a claim with this filter may touch; its NOT EXISTS is the free claim's one-time filter. */
export const settingsOf = (q: Queryable, f: SharedClaimFilter) =>
  q`SELECT 1 FROM queue_settings s WHERE s.queue = ANY(${f.queues}::text[]) ${scoped(q, f.tenant, "s.tenant")} AND ${limits(q, "s")}`;

/** Whether a queue of the filter has a defaultTimeoutSeconds: the lease's once-per-statement test (timeoutOf). */
export const defaultsOf = (q: Queryable, f: SharedClaimFilter) =>
  q`SELECT EXISTS (SELECT 1 FROM queue_settings s WHERE s.queue = ANY(${f.queues}::text[]) ${scoped(q, f.tenant, "s.tenant")}
      AND s.default_timeout_seconds IS NOT NULL)`;

/** Due, claimable, in the claim index: the claim's own filter, kinds aside. */
const due = (q: Queryable, f: SharedClaimFilter) =>
  q`${queueIs(q, f, "j")} AND ${jobGuard(q, "claim", "j.status")} AND ${tagged(q, "j")} AND j.run_at <= now()
    ${scoped(q, f.tenant, "j.tenant")} AND ${notInOpenBatch(q, "j")} AND ${notExpired(q, "j")}`;
const kindsOf = (q: Queryable, f: SharedClaimFilter, alias: string) =>
  f.kinds && f.kinds.length > 0 ? q`AND ${q.unsafe(alias)}.kind = ANY(${f.kinds}::text[])` : q``;

/**
 * CTEs ending in `claimable (id, priority, fair_tag)` for up to `total` jobs, and `gate` (its
 * time is the start time of what it leases). Queues of the filter without settings go by
 * `free`, the plain claim, when none has settings; otherwise by the walk, unlimited.
 */
export function gatedClaimableCtes(q: Queryable, f: SharedClaimFilter, total: number) {
  const window = Math.max(4 * total, total + 64);
  return q`
      settings AS MATERIALIZED (
        -- Unlocked, in the statement's snapshot: only to skip what surely cannot start, so an
        -- empty claim on a held-back queue never waits for the gate.
        SELECT s.queue, s.tenant, s.paused, s.group_concurrency,
               s.concurrency IS NOT NULL AND s.concurrency <= (SELECT count(*) FROM jobs r
                 WHERE r.queue = s.queue AND r.tenant = s.tenant AND r.status = 'running' AND ${holdsSlot(q, "r")}) AS full,
               s.rate_limit IS NOT NULL AND s.rate_limit <= (SELECT coalesce(sum(x.n), 0) FROM unnest(s.rate_at, s.rate_n) AS x(at, n)
                 WHERE x.at >= clock_timestamp() - make_interval(secs => s.rate_period_seconds)) AS spent
        FROM queue_settings s WHERE s.queue = ANY(${f.queues}::text[]) ${scoped(q, f.tenant, "s.tenant")} AND ${limits(q, "s")}
      ), free AS (
        SELECT j.id, j.priority, j.fair_tag FROM jobs j
        WHERE NOT EXISTS (SELECT 1 FROM settings) AND ${due(q, f)} ${kindsOf(q, f, "j")}
        ORDER BY j.${q.unsafe(ORDER)}
        LIMIT ${limitOf(q, total)}
        FOR UPDATE OF j SKIP LOCKED
      ), walk AS MATERIALIZED (
        -- Every kind: a job of another kind still holds its key's turn (kinds are filtered after ranking).
        SELECT j.id, j.queue, j.tenant, j.group_key, j.kind, j.priority, j.fair_tag, j.attempts FROM jobs j
        LEFT JOIN settings s ON s.queue = j.queue AND s.tenant = j.tenant
        WHERE EXISTS (SELECT 1 FROM settings) AND ${due(q, f)}
          AND NOT coalesce(s.paused OR s.full OR s.spent, false)
          AND (s.group_concurrency IS NULL OR j.group_key IS NULL OR (
            SELECT count(*) FROM (SELECT 1 FROM jobs e
              WHERE e.queue = j.queue AND e.tenant = j.tenant AND e.group_key = j.group_key AND e.id <> j.id AND ${holdsSlot(q, "e")}
              LIMIT s.group_concurrency) x) < s.group_concurrency)
        ORDER BY j.${q.unsafe(ORDER)}
        LIMIT ${limitOf(q, window)}
      ), keys AS (
        SELECT DISTINCT w.queue, w.tenant, w.group_key FROM walk w JOIN settings s USING (queue, tenant)
        WHERE w.group_key IS NOT NULL AND s.group_concurrency IS NOT NULL
      ), gate AS MATERIALIZED (
        SELECT * FROM jobline_gate(ARRAY(SELECT queue FROM settings), ARRAY(SELECT tenant FROM settings),
          ARRAY(SELECT queue FROM keys), ARRAY(SELECT tenant FROM keys), ARRAY(SELECT group_key FROM keys))
        WHERE EXISTS (SELECT 1 FROM walk)
      ), ranked AS (
        SELECT w.*, g.paused, g.concurrency, g.group_concurrency AS gc, g.rate_limit, g.running AS q_running,
               g.rate_used, k.running AS k_running, k.slots AS k_slots,
               row_number() OVER (PARTITION BY w.queue, w.tenant, w.group_key, w.attempts > 0 ORDER BY w.${q.unsafe(ORDER)}) AS key_rank
        FROM walk w
        LEFT JOIN gate g ON g.group_key IS NULL AND g.queue = w.queue AND g.tenant = w.tenant
        LEFT JOIN gate k ON k.group_key = w.group_key AND k.queue = w.queue AND k.tenant = w.tenant
      ), admissible AS (
        SELECT r.*, row_number() OVER (PARTITION BY r.queue, r.tenant ORDER BY r.${q.unsafe(ORDER)}) AS q_rank
        FROM ranked r
        WHERE NOT coalesce(r.paused, false) ${kindsOf(q, f, "r")}
          -- A retry holds its slot already and needs a running one free; a first attempt needs a
          -- slot free and to be among its key's first (the ones before it may be of other kinds).
          AND (r.gc IS NULL OR r.group_key IS NULL OR CASE WHEN r.attempts > 0
                 THEN r.k_running + r.key_rank <= r.gc ELSE r.k_slots + r.key_rank <= r.gc END)
      ), pick AS (
        SELECT a.id FROM admissible a
        WHERE (a.concurrency IS NULL OR a.q_running + a.q_rank <= a.concurrency)
          AND (a.rate_limit IS NULL OR a.rate_used + a.q_rank <= a.rate_limit)
        ORDER BY a.${q.unsafe(ORDER)}
        LIMIT ${limitOf(q, total)}
      ), gated AS (
        -- Re-checked on each row's newest version as it is locked: a job taken meanwhile is
        -- skipped. Ranks were computed before, so skipping only ever leases fewer.
        SELECT j.id, j.priority, j.fair_tag FROM jobs j
        WHERE j.id = ANY(ARRAY(SELECT id FROM pick)) AND ${jobGuard(q, "claim", "j.status")} AND ${tagged(q, "j")} AND j.run_at <= now() AND ${notExpired(q, "j")}
        FOR UPDATE OF j SKIP LOCKED
      ), claimable AS (
        SELECT * FROM free UNION ALL SELECT * FROM gated
      )`;
}

/** The gate's time: the start time of every job a gated claim leases (monotonic in gate order). */
export const gateTime = (q: Queryable) => q`coalesce((SELECT g.at FROM gate g LIMIT 1), now())`;

/**
 * After `u` (the leased rows): the rate window's log of each rate-limited queue gets this
 * claim's starts appended, and loses the starts older than the window. `s.rate_at` is the
 * row's newest version (the UPDATE re-reads a row changed since its snapshot), not the snapshot's.
 */
export const rateLogCte = (q: Queryable) => q`
      rate_log AS (
        UPDATE queue_settings s SET (rate_at, rate_n) = (
            SELECT array_agg(x.at ORDER BY x.at), array_agg(x.n ORDER BY x.at) FROM (
              SELECT r.at, r.n FROM unnest(s.rate_at, s.rate_n) AS r(at, n)
              WHERE r.at >= g.at - make_interval(secs => s.rate_period_seconds)
              UNION ALL SELECT g.at, sq.n) x)
        FROM (SELECT u.queue, u.tenant, count(*)::int AS n FROM u GROUP BY u.queue, u.tenant) sq
        JOIN gate g ON g.group_key IS NULL AND g.queue = sq.queue AND g.tenant = sq.tenant
        WHERE s.queue = sq.queue AND s.tenant = sq.tenant AND s.rate_limit IS NOT NULL
        RETURNING 1
      )`;

/** Whether any queue of the filter has settings (then only the gated claim takes its jobs). */
export async function hasSettings(f: SharedClaimFilter, q: Queryable): Promise<boolean> {
  const rows = await q<Array<{ capped: boolean }>>`SELECT EXISTS (${settingsOf(q, f)}) AS capped`;
  return rows[0]!.capped;
}
