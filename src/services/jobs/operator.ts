import type { JobStatus } from "../../domain/jobs.js";
import { rerunIfDeadlocked } from "../../db/tx.js";
import { err, ok } from "../../domain/outcomes.js";
import type { Metrics } from "../../metrics.js";
import type { JobsRepository } from "../../repositories/jobs.js";
import type { RetriedRow } from "../../repositories/jobs/operator.js";
import type { BulkFilter } from "../../repositories/jobs/read.js";
import type { Notifier } from "../notifier.js";
import type { TenantScope } from "./input.js";

// The operator's use cases: retry and delete of one job, and bulk cancel | retry | delete.
// Bulk goes through the very statements of the single actions, a chunk of ids at a time.

/** Ids per statement: each locks at most this many rows, for a few milliseconds. */
export const BULK_CHUNK = 500;

export type BulkAction = "cancel" | "retry" | "delete";
export type BulkInput = Omit<BulkFilter, "tenant" | "limit"> & { action: BulkAction; limit?: number | undefined };

export function createOperatorActions(deps: {
  jobs: JobsRepository;
  notifier: Notifier;
  metrics: Metrics;
  countWin: (from: JobStatus, rows: Array<{ status: JobStatus }>) => void;
}) {
  const { jobs, notifier, metrics, countWin } = deps;

  const retried = (rows: RetriedRow[]) => {
    for (const from of ["failed", "cancelled"] as const) countWin(from, rows.filter((r) => r.retriedFrom === from));
    for (const q of new Set(rows.map((r) => r.queue))) notifier.notify(q);
  };

  async function retry(id: string, scope: TenantScope) {
    const [row] = await jobs.retryIfFailedOrCancelled([id], scope);
    if (row) {
      retried([row]);
      return ok(row);
    }
    metrics.racesLost.inc({ operation: "retry" });
    const cur = await jobs.findById(id, scope);
    if (!cur) return err("not_found");
    if (cur.status === "failed" || cur.status === "cancelled")
      return err("not_retryable", "its batch is still open or being cancelled");
    return err("not_retryable", `job is ${cur.status}; only a failed or cancelled job can be retried`);
  }

  async function remove(id: string, scope: TenantScope) {
    const [gone] = await jobs.deleteIfFinished([id], scope);
    if (gone) return ok(gone);
    const cur = await jobs.findById(id, scope);
    if (!cur) return err("not_found");
    return err("not_finished", `job is ${cur.status}; only a finished job can be deleted`);
  }

  /** One chunk through the single action's statement(s); returns how many changed. */
  async function act(action: BulkAction, ids: string[], scope: TenantScope): Promise<number> {
    if (action === "delete") return (await jobs.deleteIfFinished(ids, scope)).length;
    if (action === "retry") {
      const rows = await jobs.retryIfFailedOrCancelled(ids, scope);
      retried(rows);
      return rows.length;
    }
    // A cancelled waiting job locks its batch after itself: the reverse of a sibling's finalisation (docs/workflows.md).
    const cancelled = await rerunIfDeadlocked(() => jobs.cancelIfQueued(ids, scope, undefined));
    countWin("queued", cancelled);
    const done = new Set(cancelled.map((r) => r.id));
    const requested = await rerunIfDeadlocked(() =>
      jobs.requestCancelIfRunning(
        ids.filter((i) => !done.has(i)),
        scope,
        undefined,
      ),
    );
    return cancelled.length + requested.length;
  }

  async function bulk(scope: TenantScope, input: BulkInput) {
    const { action, limit, ...filter } = input;
    const ids = await jobs.selectForBulk({ ...filter, tenant: scope, limit: limit ?? 10_000 });
    let changed = 0;
    for (let i = 0; i < ids.length; i += BULK_CHUNK) changed += await act(action, ids.slice(i, i + BULK_CHUNK), scope);
    return { matched: ids.length, changed, skipped: ids.length - changed };
  }

  return { retry, remove, bulk };
}
