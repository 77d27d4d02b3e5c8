import type { Queryable } from "../../db/client.js";
import { WAIT_REASONS, type WaitReason } from "../../domain/queues.js";
import { heldTag, holdsSlot, jobGuard, openBatchTag, scoped, tagged } from "../sql.js";

// What a queue's overview reads: its jobs per status, and why its queued jobs wait.

export { WAIT_REASONS, type WaitReason } from "../../domain/queues.js";

/** Job counts per status of one (tenant, queue). */
export async function countByStatus(queue: string, tenant: string, q: Queryable) {
  return q<Array<{ status: string; n: number }>>`
        SELECT status, count(*)::int AS n FROM jobs WHERE queue = ${queue} AND tenant = ${tenant} GROUP BY status`;
}

/**
 * Why queued jobs of these queues wait, per queue (tenant null: all tenants). A snapshot
 * explanation, read without locks; several reasons may hold at once.
 */
export async function waitingBecause(queues: string[], tenant: string | null, q: Queryable): Promise<Map<string, WaitReason[]>> {
  if (queues.length === 0) return new Map();
  const tj = (a: string) => scoped(q, tenant, `${a}.tenant`);
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
}
