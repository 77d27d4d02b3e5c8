import type { Queryable } from "../../db/client.js";
import { scoped } from "../sql.js";
import type { BatchStatus } from "../../domain/batches.js";
import type { JobStatus } from "../../domain/jobs.js";
// Reads of batches and of their jobs' counts; none writes.

import { type BatchCounts, type BatchCursor, type BatchRow, type CountedBatch, countsOf, withCounts, zeroCounts } from "./rows.js";

export async function findById(id: string, tenant: string | null, q: Queryable): Promise<BatchRow | null> {
  const rows = await q<BatchRow[]>`SELECT * FROM batches WHERE id = ${id} ${scoped(q, tenant)}`;
  return rows[0] ?? null;
}

export async function findCounted(id: string, tenant: string | null, q: Queryable): Promise<CountedBatch | null> {
  const rows = await q<(BatchRow & { jobCounts: Partial<BatchCounts> })[]>`
        SELECT b.*, ${countsOf(q, "b.id")} AS job_counts FROM batches b WHERE b.id = ${id} ${scoped(q, tenant, "b.tenant")}`;
  return rows[0] ? withCounts(rows[0]) : null;
}

/** Newest first; each row also carries the exact text of created_at for the next page's cursor. */
export async function list(
  f: { tenant: string | null; status?: BatchStatus | undefined; limit: number; after?: BatchCursor | undefined },
  q: Queryable,
): Promise<Array<CountedBatch & { cursor: BatchCursor }>> {
  const rows = await q<(BatchRow & { jobCounts: Partial<BatchCounts>; createdAtText: string })[]>`
        SELECT b.*, ${countsOf(q, "b.id")} AS job_counts,
               to_char(b.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS created_at_text
        FROM batches b
        WHERE true ${scoped(q, f.tenant, "b.tenant")}
          ${f.status === undefined ? q`` : q`AND b.status = ${f.status}`}
          ${f.after === undefined ? q`` : q`AND (b.created_at, b.id) < (${f.after.createdAt}::timestamptz, ${f.after.id}::uuid)`}
        ORDER BY b.created_at DESC, b.id DESC
        LIMIT ${f.limit}`;
  return rows.map(({ createdAtText, ...r }) => ({ ...withCounts(r), cursor: { createdAt: createdAtText, id: r.id } }));
}

/** Live job counts of one batch (inside a transaction: consistent with the row it just wrote). */
export async function counts(id: string, q: Queryable): Promise<BatchCounts> {
  const rows = await q<{ status: JobStatus; n: number }[]>`
        SELECT status, count(*)::int AS n FROM jobs WHERE batch_id = ${id} GROUP BY status`;
  const c = zeroCounts();
  for (const r of rows) c[r.status] = r.n;
  return c;
}

/** The queues that have claimable jobs of this batch, to wake their long-pollers. */
export async function queuedQueues(id: string, q: Queryable): Promise<string[]> {
  const rows = await q<{ queue: string }[]>`
        SELECT DISTINCT queue FROM jobs WHERE batch_id = ${id} AND status = 'queued'`;
  return rows.map((r) => r.queue);
}

/** Jobs finished per minute over the last `minutes` minutes, every minute present (zeros included). */
export async function throughput(tenant: string | null, minutes: number, q: Queryable) {
  return q<{ minute: Date; succeeded: number; failed: number; cancelled: number }[]>`
        WITH span AS (
          SELECT date_trunc('minute', now()) - make_interval(mins => ${minutes - 1}) AS first,
                 date_trunc('minute', now()) AS last
        ), f AS (
          SELECT date_trunc('minute', finished_at) AS minute,
                 count(*) FILTER (WHERE status = 'succeeded')::int AS succeeded,
                 count(*) FILTER (WHERE status = 'failed')::int AS failed,
                 count(*) FILTER (WHERE status = 'cancelled')::int AS cancelled
          FROM jobs, span WHERE finished_at >= span.first ${scoped(q, tenant)}
          GROUP BY 1
        )
        SELECT m.minute, coalesce(f.succeeded, 0) AS succeeded, coalesce(f.failed, 0) AS failed,
               coalesce(f.cancelled, 0) AS cancelled
        FROM span, generate_series(span.first, span.last, interval '1 minute') AS m(minute)
        LEFT JOIN f ON f.minute = m.minute
        ORDER BY m.minute`;
}
