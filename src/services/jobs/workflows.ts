import type { Queryable, Sql } from "../../db/client.js";
import { err } from "../../domain/outcomes.js";
import * as deps from "../../repositories/jobs/dependencies.js";

// Workflows (docs/workflows.md): a submit's dependsOn, checked and linked inside the submit's
// transaction, and the cascade that carries a cancellation past the first level.

export const MAX_PARENTS = 100;
export interface DependsOnInput {
  jobs?: string[] | undefined;
  batches?: string[] | undefined;
}
export interface Parents {
  jobs: string[];
  batches: string[];
}

const TERMINAL_JOB = new Set(["succeeded", "failed", "cancelled"]);
const TERMINAL_BATCH = new Set(["succeeded", "failed", "partially_succeeded", "cancelled"]);

/** Lower-case ids without repeats; null when no parent is named. */
export function parentsOf(d: DependsOnInput | undefined): Parents | null {
  if (!d) return null;
  const uniq = (ids: string[] | undefined) => [...new Set((ids ?? []).map((i) => i.toLowerCase()))];
  const p = { jobs: uniq(d.jobs), batches: uniq(d.batches) };
  return p.jobs.length + p.batches.length > 0 ? p : null;
}

export type LockedParents = Map<string, { isBatch: boolean; finished: boolean; succeeded: boolean }>;

/**
 * Locks every parent the new jobs name (FOR SHARE, see lockParents) and checks they exist in
 * `tenant`; runs first in the submit's transaction, before anything is written.
 */
export async function lockAndCheck(tenant: string, all: Parents[], q: Queryable) {
  const jobs = [...new Set(all.flatMap((p) => p.jobs))];
  const batches = [...new Set(all.flatMap((p) => p.batches))];
  const found = await deps.lockParents(tenant, jobs, batches, q);
  const locked: LockedParents = new Map();
  for (const r of found.jobs)
    if (r.tenant === tenant) locked.set(r.id, { isBatch: false, finished: TERMINAL_JOB.has(r.status), succeeded: r.status === "succeeded" });
  for (const r of found.batches)
    if (r.tenant === tenant) locked.set(r.id, { isBatch: true, finished: TERMINAL_BATCH.has(r.status), succeeded: r.status === "succeeded" });
  const missingJob = jobs.find((id) => !locked.get(id) || locked.get(id)!.isBatch);
  if (missingJob) return { error: err("not_found", `dependsOn: job ${missingJob} not found`), locked: null };
  const missingBatch = batches.find((id) => !locked.get(id)?.isBatch);
  if (missingBatch) return { error: err("not_found", `dependsOn: batch ${missingBatch} not found`), locked: null };
  return { locked };
}

/**
 * Writes the edges of the new jobs (inserted waiting, counting every parent) and resolves at
 * once each edge to a parent already finished, through the same function a finalising
 * statement runs: released, or cancelled (dependency_failed) with its event. Returns whether
 * any job changed (its row is then read again in this transaction).
 */
export async function linkChildren(children: Array<{ id: string; parents: Parents }>, locked: LockedParents, q: Queryable) {
  await deps.insertEdges(
    children.flatMap((c) => [
      ...c.parents.jobs.map((p) => ({ parentId: p, parentIsBatch: false, childId: c.id })),
      ...c.parents.batches.map((p) => ({ parentId: p, parentIsBatch: true, childId: c.id })),
    ]),
    q,
  );
  let changed = false;
  for (const c of children)
    for (const p of [...c.parents.jobs, ...c.parents.batches]) {
      const l = locked.get(p)!;
      if (!l.finished) continue;
      await deps.resolveEdgeOfFinished(p, l.succeeded, c.id, q);
      changed = true;
    }
  return changed;
}

/** Cascade steps per request before it leaves the rest to the worker's duty (src/worker/cascade.ts). */
const REQUEST_STEPS = 2;
const STEP_PARENTS = 100;

/**
 * Carries cancellations past the first level: each step resolves up to eight more levels below
 * up to STEP_PARENTS parents, in its own transaction. `maxSteps` bounds the work one caller does; what
 * is left stays in dependency_cascade for the next caller. Returns the parents taken.
 */
export async function continueCascade(sql: Sql, maxSteps = REQUEST_STEPS, deadline = Number.POSITIVE_INFINITY) {
  let total = 0;
  for (let i = 0; i < maxSteps && Date.now() < deadline; i++) {
    const n = await deps.continueCascade(STEP_PARENTS, sql);
    total += n;
    if (n === 0) break;
  }
  return total;
}

/** After a request that may have cancelled a parent: a few steps now, never failing the request. */
export function continueAfter(sql: Sql) {
  return continueCascade(sql).catch(() => 0);
}
