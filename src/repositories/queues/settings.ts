import type { Queryable } from "../../db/client.js";
import { limits } from "../sql.js";

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

export async function getSettings(queue: string, tenant: string, q: Queryable): Promise<QueueSettings | null> {
  const rows = await q<Row[]>`SELECT ${q.unsafe(COLUMNS)} FROM queue_settings WHERE queue = ${queue} AND tenant = ${tenant}`;
  return rows[0] ? toSettings(rows[0]) : null;
}

/** Replaces the settings; none at all removes the row, so the queue takes the free claim again. */
export async function replaceSettings(queue: string, tenant: string, s: QueueSettings, q: Queryable): Promise<QueueSettings> {
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
}

/** paused = true (creating the row); idempotent. */
export async function pauseQueue(queue: string, tenant: string, q: Queryable): Promise<QueueSettings> {
  const rows = await q<Row[]>`
        INSERT INTO queue_settings (queue, tenant, paused) VALUES (${queue}, ${tenant}, true)
        ON CONFLICT (queue, tenant) DO UPDATE SET paused = true, updated_at = now(),
          version = queue_settings.version + (CASE WHEN queue_settings.paused THEN 0 ELSE 1 END)
        RETURNING ${q.unsafe(COLUMNS)}`;
  return toSettings(rows[0]);
}

/** paused = false; idempotent (no row: nothing to resume). */
export async function resumeQueue(queue: string, tenant: string, q: Queryable): Promise<QueueSettings> {
  const rows = await q<Row[]>`
        UPDATE queue_settings SET paused = false, updated_at = now(),
          version = version + (CASE WHEN paused THEN 1 ELSE 0 END)
        WHERE queue = ${queue} AND tenant = ${tenant}
        RETURNING ${q.unsafe(COLUMNS)}`;
  return toSettings(rows[0]);
}

/** Queue names with limits in any tenant: where claims take the gated text. */
export async function cappedQueues(q: Queryable): Promise<string[]> {
  return (await q<Array<{ queue: string }>>`SELECT DISTINCT queue FROM queue_settings s WHERE ${limits(q, "s")}`).map((r) => r.queue);
}
