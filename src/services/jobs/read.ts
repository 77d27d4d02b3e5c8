import { retryIfLost } from "../../db/tx.js";
import { isTerminal } from "../../domain/jobs.js";
import { err, ok } from "../../domain/outcomes.js";
import type { JobRow } from "../../repositories/jobs.js";
import { listDependents } from "../../repositories/jobs/dependencies.js";
import type { Cancel } from "../tripwire.js";
import type { JobCtx } from "./context.js";
import type { TenantScope } from "./input.js";

// The read use cases: one job, one job once it is finished (GET ?waitMs=), a job's dependents.

export async function get(c: JobCtx, id: string, scope: TenantScope) {
  const row = await retryIfLost(() => c.jobs.findById(id, scope), true);
  return row ? ok(row) : err("not_found");
}

/**
 * GET ?waitMs=: the job once it is finished, or as it is when the wait ends. The wait is
 * registered before the first read, so a finalisation committed after that read wakes it
 * (finishedWaits); no query runs while it waits.
 */
export async function getWhenFinished(c: JobCtx, id: string, scope: TenantScope, waitMs: number, signal?: Cancel) {
  const w = c.finishedWaits.wait(id, waitMs, signal);
  try {
    const first = await get(c, id, scope);
    if (!first.ok || isTerminal(first.value.status)) return first;
    await w.done;
  } finally {
    w.cancel();
  }
  // Every request woken by one finalisation reads the job at once: they share one read.
  const row = await sharedRead(c, id.toLowerCase());
  return row && (scope === null || row.tenant === scope) ? ok(row) : err("not_found");
}

const rereads = new WeakMap<JobCtx, Map<string, Promise<JobRow | null>>>();
function sharedRead(c: JobCtx, id: string): Promise<JobRow | null> {
  let reads = rereads.get(c);
  if (!reads) {
    reads = new Map();
    rereads.set(c, reads);
  }
  const shared = reads;
  let p = shared.get(id);
  if (!p) {
    p = retryIfLost(() => c.jobs.findById(id, null), true).finally(() => shared.delete(id));
    shared.set(id, p);
  }
  return p;
}

/** The jobs depending on job `id` (limit + 1 rows, to tell whether a next page exists). */
export async function dependents(c: JobCtx, id: string, scope: TenantScope, limit: number, after: string | null) {
  if (!(await c.jobs.findById(id, scope))) return err("not_found");
  return ok(await listDependents(id, scope, limit + 1, after, c.sql));
}
