import type { Queryable } from "../../db/client.js";
import { scoped } from "../sql.js";
import type { JobRow } from "./rows.js";

// Workflows (docs/workflows.md): the statements of a submit with dependsOn, the dependents
// list, and the cascade step. The resolution itself is jobline_resolve_dependents
// (drizzle/0013), run by the trigger on a parent's finalising UPDATE.

export interface ParentRow {
  id: string;
  tenant: string;
  status: string;
}

/**
 * Locks the named parents FOR SHARE (jobs, then batches, each in id order, as every writer
 * locks them) and returns their latest committed status. A finalising UPDATE of a parent
 * waits for this submit's commit and its trigger then sees the child's edge; a submit that
 * waits for a finaliser reads the finished status here. So exactly one of the two sees the other.
 */
export async function lockParents(tenant: string, jobIds: string[], batchIds: string[], q: Queryable) {
  const jobs = jobIds.length ? await lockParentJobs(tenant, jobIds, q) : [];
  const batches = batchIds.length
    ? await q<ParentRow[]>`SELECT id, tenant, status::text AS status FROM batches WHERE id = ANY(${batchIds}::uuid[]) ORDER BY id FOR SHARE`
    : [];
  return { jobs, batches };
}

/**
 * The parent jobs' locks. A job's finalisation trigger fires only once it has_dependents, so a
 * submit naming a job not yet marked locks all its parent jobs FOR NO KEY UPDATE instead of FOR
 * SHARE (one mode, id order: no lock upgrade, no cycle) and marks them (whatever their status: a
 * finished parent may be retried). Marks are never removed, so later children take FOR SHARE.
 */
async function lockParentJobs(tenant: string, ids: string[], q: Queryable): Promise<ParentRow[]> {
  const [seen] = await q<[{ unmarked: boolean }]>`
    SELECT EXISTS (SELECT 1 FROM jobs WHERE id = ANY(${ids}::uuid[]) AND tenant = ${tenant} AND NOT has_dependents) AS unmarked`;
  if (!seen!.unmarked)
    return q<ParentRow[]>`SELECT id, tenant, status::text AS status FROM jobs WHERE id = ANY(${ids}::uuid[]) ORDER BY id FOR SHARE`;
  const rows = await q<Array<ParentRow & { hasDependents: boolean }>>`
    SELECT id, tenant, status::text AS status, has_dependents FROM jobs WHERE id = ANY(${ids}::uuid[]) ORDER BY id FOR NO KEY UPDATE`;
  const mark = rows.filter((r) => r.tenant === tenant && !r.hasDependents).map((r) => r.id);
  if (mark.length > 0) await q`UPDATE jobs SET has_dependents = true WHERE id = ANY(${mark}::uuid[])`;
  return rows.map(({ id, tenant: t, status }) => ({ id, tenant: t, status }));
}

/** One unresolved edge per parent of each new child. */
export async function insertEdges(edges: Array<{ parentId: string; parentIsBatch: boolean; childId: string }>, q: Queryable) {
  if (edges.length === 0) return;
  await q`
    INSERT INTO job_dependencies (parent_id, parent_is_batch, child_id)
    SELECT * FROM unnest(${edges.map((e) => e.parentId)}::uuid[], ${edges.map((e) => String(e.parentIsBatch))}::text[]::boolean[],
                         ${edges.map((e) => e.childId)}::uuid[])`;
}

/** Resolves one new child's edge to a parent already finished (seen under the submit's lock). */
export async function resolveEdgeOfFinished(parentId: string, succeeded: boolean, childId: string, q: Queryable) {
  await q`SELECT jobline_resolve_dependents(${parentId}::uuid, ${succeeded}::boolean, ${childId}::uuid)`;
}

/** One step of the cascade (see jobline_continue_cascade); the number of parents it took. */
export async function continueCascade(limit: number, q: Queryable): Promise<number> {
  const [r] = await q<{ n: number }[]>`SELECT jobline_continue_cascade(${limit}) AS n`;
  return r!.n;
}

/** The jobs that depend on `parentId` (a job or a batch), by id, keyset after `after`. */
export async function listDependents(parentId: string, tenant: string | null, limit: number, after: string | null, q: Queryable) {
  return q<JobRow[]>`
    SELECT j.* FROM job_dependencies d JOIN jobs j ON j.id = d.child_id
    WHERE d.parent_id = ${parentId} ${after === null ? q`` : q`AND d.child_id > ${after}::uuid`}
      ${scoped(q, tenant, "j.tenant")}
    ORDER BY d.child_id
    LIMIT ${limit}`;
}
