import type { Queryable } from "../db/client.js";
import { heldTag, holdsSlot, jobGuard, limits, openBatchTag, tagged } from "./sql.js";

// Queue settings (queue controls). The row is also the gate claims lock (jobline_gate), so
// every write here waits for the claims deciding at that moment and the next claim sees it.

export interface QueueSettings {
  paused: boolean;
  concurrency: number | null;
  groupConcurrency: number | null;
  rateLimit: { limit: number; periodSeconds: number } | null;
  defaultTimeoutSeconds: number | null;
}

export const NO_SETTINGS: QueueSettings = { paused: false, concurrency: null, groupConcurrency: null, rateLimit: null, defaultTimeoutSeconds: null };

export const WAIT_REASONS = ["paused", "concurrency", "groupConcurrency", "rateLimit", "scheduled", "batchPreparing"] as const;
export type WaitReason = (typeof WAIT_REASONS)[number];

type Row = {
  paused: boolean;
  concurrency: number | null;
  groupConcurrency: number | null;
  rateLimit: number | null;
  ratePeriodSeconds: number | null;
  defaultTimeoutSeconds: number | null;
};
const toSettings = (r: Row | undefined): QueueSettings =>
  r
    ? {
        paused: r.paused,
        concurrency: r.concurrency,
        groupConcurrency: r.groupConcurrency,
        rateLimit: r.rateLimit === null ? null : { limit: r.rateLimit, periodSeconds: r.ratePeriodSeconds! },
        defaultTimeoutSeconds: r.defaultTimeoutSeconds,
      }
    : NO_SETTINGS;
const COLUMNS = "paused, concurrency, group_concurrency, rate_limit, rate_period_seconds, default_timeout_seconds";

const isEmpty = (s: QueueSettings) =>
  !s.paused && s.concurrency === null && s.groupConcurrency === null && s.rateLimit === null && s.defaultTimeoutSeconds === null;

export function queuesRepository(sql: Queryable) {
  return {
    async get(queue: string, tenant: string, q: Queryable = sql): Promise<QueueSettings | null> {
      const rows = await q<Row[]>`SELECT ${q.unsafe(COLUMNS)} FROM queue_settings WHERE queue = ${queue} AND tenant = ${tenant}`;
      return rows[0] ? toSettings(rows[0]) : null;
    },

    /** Replaces the settings; none at all removes the row, so the queue takes the free claim again. */
    async replace(queue: string, tenant: string, s: QueueSettings, q: Queryable = sql): Promise<QueueSettings> {
      if (isEmpty(s)) {
        await q`DELETE FROM queue_settings WHERE queue = ${queue} AND tenant = ${tenant}`;
        return NO_SETTINGS;
      }
      const rows = await q<Row[]>`
        INSERT INTO queue_settings (queue, tenant, ${q.unsafe(COLUMNS)})
        VALUES (${queue}, ${tenant}, ${s.paused}, ${s.concurrency}, ${s.groupConcurrency}, ${s.rateLimit?.limit ?? null},
                ${s.rateLimit?.periodSeconds ?? null}, ${s.defaultTimeoutSeconds})
        ON CONFLICT (queue, tenant) DO UPDATE SET paused = EXCLUDED.paused, concurrency = EXCLUDED.concurrency,
          group_concurrency = EXCLUDED.group_concurrency, rate_limit = EXCLUDED.rate_limit,
          rate_period_seconds = EXCLUDED.rate_period_seconds, default_timeout_seconds = EXCLUDED.default_timeout_seconds,
          updated_at = now(), version = queue_settings.version + 1
        RETURNING ${q.unsafe(COLUMNS)}`;
      return toSettings(rows[0]);
    },

    /** paused = true (creating the row); idempotent. */
    async pause(queue: string, tenant: string, q: Queryable = sql): Promise<QueueSettings> {
      const rows = await q<Row[]>`
        INSERT INTO queue_settings (queue, tenant, paused) VALUES (${queue}, ${tenant}, true)
        ON CONFLICT (queue, tenant) DO UPDATE SET paused = true, updated_at = now(),
          version = queue_settings.version + (CASE WHEN queue_settings.paused THEN 0 ELSE 1 END)
        RETURNING ${q.unsafe(COLUMNS)}`;
      return toSettings(rows[0]);
    },

    /** paused = false; idempotent (no row: nothing to resume). */
    async resume(queue: string, tenant: string, q: Queryable = sql): Promise<QueueSettings> {
      const rows = await q<Row[]>`
        UPDATE queue_settings SET paused = false, updated_at = now(),
          version = version + (CASE WHEN paused THEN 1 ELSE 0 END)
        WHERE queue = ${queue} AND tenant = ${tenant}
        RETURNING ${q.unsafe(COLUMNS)}`;
      return toSettings(rows[0]);
    },

    /** Queue names with limits in any tenant: where claims take the gated text. */
    async cappedQueues(q: Queryable = sql): Promise<string[]> {
      return (await q<Array<{ queue: string }>>`SELECT DISTINCT queue FROM queue_settings s WHERE ${limits(q, "s")}`).map((r) => r.queue);
    },

    /** Job counts per status of one (tenant, queue). */
    async counts(queue: string, tenant: string, q: Queryable = sql) {
      return q<Array<{ status: string; n: number }>>`
        SELECT status, count(*)::int AS n FROM jobs WHERE queue = ${queue} AND tenant = ${tenant} GROUP BY status`;
    },

    /**
     * Why queued jobs of these queues wait, per queue (tenant null: all tenants). A snapshot
     * explanation, read without locks; several reasons may hold at once.
     */
    async waitingBecause(queues: string[], tenant: string | null, q: Queryable = sql): Promise<Map<string, WaitReason[]>> {
      if (queues.length === 0) return new Map();
      const tj = (a: string) => (tenant === null ? q`` : q`AND ${q.unsafe(a)}.tenant = ${tenant}`);
      const dueOf = (s: string) => q`EXISTS (SELECT 1 FROM jobs d WHERE d.queue = ${q.unsafe(s)}.queue AND d.tenant = ${q.unsafe(s)}.tenant
            AND ${jobGuard(q, "claim", "d.status")} AND ${tagged(q, "d")} AND d.run_at <= now())`;
      const rows = await q<Array<{ queue: string; reason: WaitReason }>>`
        WITH qn AS (SELECT unnest(${queues}::text[]) AS queue),
        s AS (
          SELECT s.*, (SELECT count(*) FROM jobs r WHERE r.queue = s.queue AND r.tenant = s.tenant
                         AND r.status = 'running' AND ${holdsSlot(q, "r")}) AS running,
                 (SELECT coalesce(sum(x.n), 0) FROM unnest(s.rate_at, s.rate_n) AS x(at, n)
                   WHERE x.at >= clock_timestamp() - make_interval(secs => s.rate_period_seconds)) AS rate_used
          FROM queue_settings s JOIN qn USING (queue) WHERE true ${tj("s")}
        )
        SELECT queue, 'paused' AS reason FROM s WHERE s.paused AND ${dueOf("s")}
        UNION SELECT queue, 'concurrency' FROM s WHERE s.running >= s.concurrency AND ${dueOf("s")}
        UNION SELECT queue, 'rateLimit' FROM s WHERE s.rate_used >= s.rate_limit AND ${dueOf("s")}
        UNION SELECT queue, 'groupConcurrency' FROM s WHERE s.group_concurrency IS NOT NULL AND EXISTS (
          SELECT 1 FROM (SELECT d.group_key FROM jobs d
                         WHERE d.queue = s.queue AND d.tenant = s.tenant AND ${jobGuard(q, "claim", "d.status")} AND ${tagged(q, "d")}
                           AND d.run_at <= now() AND d.attempts = 0 AND d.group_key IS NOT NULL
                         ORDER BY d.priority DESC NULLS LAST, d.fair_tag, d.id LIMIT 200) d
          WHERE (SELECT count(*) FROM jobs e WHERE e.queue = s.queue AND e.tenant = s.tenant AND e.group_key = d.group_key
                   AND ${holdsSlot(q, "e")}) >= s.group_concurrency)
        UNION SELECT qn.queue, 'scheduled' FROM qn WHERE EXISTS (
          SELECT 1 FROM jobs d WHERE d.queue = qn.queue ${tj("d")} AND d.status = 'queued' AND d.run_at > now()
            AND (${tagged(q, "d")} OR (${heldTag(q, "d")})))
        UNION SELECT qn.queue, 'batchPreparing' FROM qn WHERE EXISTS (
          SELECT 1 FROM jobs d WHERE d.queue = qn.queue ${tj("d")} AND d.status = 'queued' AND ${openBatchTag(q, "d")})`;
      const out = new Map<string, WaitReason[]>();
      for (const r of rows) out.set(r.queue, [...(out.get(r.queue) ?? []), r.reason]);
      for (const [k, v] of out) out.set(k, WAIT_REASONS.filter((w) => v.includes(w)));
      return out;
    },
  };
}

export type QueuesRepository = ReturnType<typeof queuesRepository>;
