import { isTerminal, type JobStatus } from "../../domain/jobs.js";
import { err } from "../../domain/outcomes.js";
import type { Metrics } from "../../metrics.js";
import type { JobRow, LeanJobRow } from "../../repositories/jobs.js";
import { traceClaimed, traceFinished } from "../../tracing.js";
import type { JobCtx } from "./context.js";
import type { TenantScope } from "./input.js";

// After a guarded write: a win counted, traced and announced to waiters; a loss counted and explained.

const isFinished = (r: { status: JobStatus }): r is LeanJobRow => "startedAt" in r && "kind" in r;
const isStarted = (r: { status: JobStatus }): r is JobRow => r.status === "running" && "runAt" in r && "startedAt" in r;

/**
 * One increment per resulting status, not per row: labels are hashed on every call. `since`:
 * when the call began (this process's clock), the start of the claim and finalisation spans.
 */
export function countWin(c: Pick<JobCtx, "metrics" | "finishedWaits">, from: JobStatus, rows: Array<{ id?: string; status: JobStatus }>, since?: number) {
  const { metrics } = c;
  const by = new Map<JobStatus, number>();
  const finished: string[] = [];
  for (const r of rows) {
    by.set(r.status, (by.get(r.status) ?? 0) + 1);
    // Committed finalisations wake GET ?waitMs= waiters (every caller counts after its commit).
    if (r.id !== undefined && isTerminal(r.status)) finished.push(r.id);
  }
  if (finished.length > 0) c.finishedWaits.announce(finished);
  for (const [to, n] of by) metrics.transitions.inc({ from, to }, n);
  // Wait and run-time histograms from the rows the statement returned: no query of their own.
  if (from === "running") {
    metrics.jobsFinished(rows.filter(isFinished));
    traceFinished(rows.filter(isFinished), since);
  } else if (by.get("running")) {
    const started = rows.filter(isStarted);
    metrics.jobsStarted(started);
    traceClaimed(started, since);
  }
}
export const lost = (metrics: Metrics, operation: string) => metrics.racesLost.inc({ operation });

/** Wakes one waiting poll that can take `row`, when it is claimable now (run_at and created_at are the database's clock). */
export function announce(c: JobCtx, row: JobRow) {
  if (row.runAt.getTime() <= row.createdAt.getTime()) c.notifier.notify(row.queue, { kind: row.kind, tenant: row.tenant });
}

/** After a guarded write changed nothing, one read decides which loss it was. */
export async function explainLoss(c: JobCtx, id: string, scope: TenantScope, version?: number) {
  const row = await c.jobs.findById(id, scope);
  if (!row) return { row: null, error: err("not_found") };
  if (version !== undefined && row.version !== version)
    return { row, error: err("version_mismatch", `current version is ${row.version}`) };
  return { row, error: null };
}
