import type { Queryable } from "../db/client.js";
import type { JobStatus } from "../domain/jobs.js";
import { heldTag, tagged } from "./sql.js";

/** The metrics sampler's statements. `byTenant: false` aggregates across tenants (tenant is then ""). */
export interface DepthRow {
  tenant: string;
  queue: string;
  status: JobStatus;
  n: number;
}
export interface OldestRow {
  tenant: string;
  queue: string;
  age: number;
}

/** Jobs per (tenant,) queue and status. Reads every retained job: run by the sampler only, once per period. */
export async function countJobsByQueue(q: Queryable, byTenant: boolean): Promise<DepthRow[]> {
  const tenant = byTenant ? q`tenant` : q`''::text`;
  return q<DepthRow[]>`
    SELECT ${tenant} AS tenant, queue, status, count(*)::int AS n FROM jobs
    GROUP BY 1, queue, status`;
}

/** Per (tenant,) queue, the age of the oldest claimable job; reads the queued jobs only (see oldestClaimableByQueue). */
export async function oldestClaimableAge(q: Queryable, byTenant: boolean): Promise<OldestRow[]> {
  const tenant = byTenant ? q`tenant` : q`''::text`;
  return q<OldestRow[]>`
    SELECT tenant, queue, extract(epoch FROM now() - min(run_at))::float8 AS age FROM (
      SELECT ${tenant} AS tenant, queue, run_at FROM jobs
      WHERE status = 'queued' AND ${tagged(q, "jobs")} AND run_at <= now()
      UNION ALL
      SELECT ${tenant} AS tenant, queue, run_at FROM jobs
      WHERE status = 'queued' AND ${heldTag(q, "jobs")} AND run_at <= now()
    ) due GROUP BY tenant, queue`;
}
