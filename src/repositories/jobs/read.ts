import type postgres from "postgres";
import type { Queryable } from "../../db/client.js";
import type { JobStatus } from "../../domain/jobs.js";
import { heldTag, scoped, tagged } from "../sql.js";
import type { JobRow } from "./rows.js";

export async function findById(id: string, tenant: string | null, q: Queryable): Promise<JobRow | null> {
  const rows = await q<JobRow[]>`
        SELECT * FROM jobs WHERE id = ${id} ${scoped(q, tenant)}`;
  return rows[0] ?? null;
}

export async function findByIdempotencyKey(tenant: string, key: string, q: Queryable): Promise<JobRow | null> {
  const rows = await q<JobRow[]>`SELECT * FROM jobs WHERE tenant = ${tenant} AND idempotency_key = ${key}`;
  return rows[0] ?? null;
}

/** What GET /v1/jobs and a bulk action's filter select by. */
export interface JobMatch {
  tenant: string | null;
  queue?: string | undefined;
  status?: JobStatus | undefined;
  kind?: string | undefined;
  batchId?: string | undefined;
  tag?: string | undefined;
  /** ISO instants, exclusive bounds on created_at. */
  createdAfter?: string | undefined;
  createdBefore?: string | undefined;
}

export interface JobListFilter extends JobMatch {
  limit: number;
  /** Keyset position: created_at as PostgreSQL text (microseconds kept) and id. */
  after?: { createdAt: string; id: string } | undefined;
}

/**
 * The ordered source `l` (tenant, created_at, id) and the conditions of a match. With a tag
 * it is job_tags, whose index leads with (tenant, tag); else job_list. Both are written once per
 * job, so their indexes stay small and the order comes from them; each entry then finds its
 * job by primary key. Timestamps are sent as text: postgres.js rounds a timestamptz parameter
 * through a JS Date (milliseconds).
 */
function matching(f: JobMatch, q: Queryable) {
  const from = f.tag === undefined ? q`job_list l` : q`job_tags l`;
  const conds = [
    f.tenant === null ? null : q`l.tenant = ${f.tenant}`,
    f.tag === undefined ? null : q`l.tag = ${f.tag}`,
    f.createdAfter === undefined ? null : q`l.created_at > ${f.createdAfter}::text::timestamptz`,
    f.createdBefore === undefined ? null : q`l.created_at < ${f.createdBefore}::text::timestamptz`,
    f.queue === undefined ? null : q`j.queue = ${f.queue}`,
    f.status === undefined ? null : q`j.status = ${f.status}`,
    f.kind === undefined ? null : q`j.kind = ${f.kind}`,
    f.batchId === undefined ? null : q`j.batch_id = ${f.batchId}`,
  ];
  return { from, conds };
}

const whereOf = (conds: Array<postgres.PendingQuery<postgres.Row[]> | null>, q: Queryable) =>
  conds.filter((c) => c !== null).reduce((acc, c, i) => (i === 0 ? q`WHERE ${c}` : q`${acc} AND ${c}`), q``);

/** Newest first, keyset-paged. */
export async function list(f: JobListFilter, q: Queryable): Promise<Array<JobRow & { cursorTs: string }>> {
  const { from, conds } = matching(f, q);
  const after = f.after === undefined ? null : q`(l.created_at, l.id) < (${f.after.createdAt}::text::timestamptz, ${f.after.id}::uuid)`;
  return q<Array<JobRow & { cursorTs: string }>>`
        SELECT j.*, j.created_at::text AS cursor_ts FROM ${from} JOIN jobs j ON j.id = l.id ${whereOf([...conds, after], q)}
        ORDER BY l.created_at DESC NULLS LAST, l.id DESC NULLS LAST LIMIT ${f.limit}`;
}

/** Jobs per (tenant, queue) and status (GET /v1/queues). Reads every retained job. */
export function countByQueue(tenant: string | null, q: Queryable) {
  return q<{ tenant: string; queue: string; status: JobStatus; n: number }[]>`
        SELECT tenant, queue, status, count(*)::int AS n FROM jobs
        ${tenant === null ? q`` : q`WHERE tenant = ${tenant}`}
        GROUP BY tenant, queue, status ORDER BY queue, tenant`;
}

/**
 * Per queue, the age of the oldest claimable job: due, tagged or held, not in an open
 * batch. Written as the claim index's and the held index's predicates, so it reads the
 * queued jobs only, not the retained history (1M finished jobs: 100 ms as one filter).
 */
export function oldestClaimableByQueue(tenant: string | null, q: Queryable) {
  const t = scoped(q, tenant);
  return q<{ tenant: string; queue: string; age: number }[]>`
        SELECT tenant, queue, extract(epoch FROM now() - min(run_at))::float8 AS age FROM (
          SELECT tenant, queue, run_at FROM jobs
          WHERE status = 'queued' AND ${tagged(q, "jobs")} AND run_at <= now() ${t}
          UNION ALL
          SELECT tenant, queue, run_at FROM jobs
          WHERE status = 'queued' AND ${heldTag(q, "jobs")}
            AND run_at <= now() ${t}
        ) due GROUP BY tenant, queue`;
}

export interface BulkFilter extends JobMatch {
  ids?: string[] | undefined;
  limit: number;
}

/** The ids a bulk action goes through: the given ids that exist, or the filter's matches, oldest first. */
export async function selectForBulk(f: BulkFilter, q: Queryable): Promise<string[]> {
  const t = scoped(q, f.tenant);
  if (f.ids !== undefined) {
    const rows = await q<{ id: string }[]>`SELECT id FROM jobs WHERE id = ANY(${f.ids}::uuid[]) ${t} ORDER BY id LIMIT ${f.limit}`;
    return rows.map((r) => r.id);
  }
  const { from, conds } = matching(f, q);
  const rows = await q<{ id: string }[]>`
        SELECT j.id FROM ${from} JOIN jobs j ON j.id = l.id ${whereOf(conds, q)}
        ORDER BY l.created_at, l.id LIMIT ${f.limit}`;
  return rows.map((r) => r.id);
}
