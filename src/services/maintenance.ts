import type { Sql } from "../db/client.js";
import { migrationsApplied } from "../db/migrate.js";
import type { Metrics } from "../metrics.js";
import type { JobsRepository } from "../repositories/jobs.js";
import type { FinishedWaits } from "./finishedWaits.js";
import type { Notifier } from "./notifier.js";
import { traceFinished } from "../tracing.js";
import type { CappedQueues } from "./queues/capped.js";
import { continueCascade } from "./jobs/workflows.js";

export function createMaintenanceService(deps: {
  sql: Sql;
  jobs: JobsRepository;
  metrics: Metrics;
  notifier: Notifier;
  capped: CappedQueues;
  finishedWaits?: FinishedWaits;
}) {
  const { jobs, metrics, notifier, capped } = deps;
  const finished = (rows: Array<{ id: string; status: string }>) =>
    deps.finishedWaits?.announce(rows.filter((r) => r.status !== "queued" && r.status !== "running").map((r) => r.id));

  /**
   * Lease reaper. Each statement requeues, fails or cancels up to `limit` expired leases at
   * once (reapExpired); a sweep repeats it only while full batches come back. Safe in every
   * replica at once (SKIP LOCKED). A dead worker's job is back in the queue at most lease +
   * reaper interval after its last heartbeat, and the NOTIFY here wakes long polls everywhere.
   * Then the jobs a seal left with the open-batch tag (releaseStragglers). Returns how many
   * leases it reaped.
   */
  async function reapOnce(limit = 1000): Promise<number> {
    let total = 0;
    for (;;) {
      const rows = await jobs.reapExpired(limit);
      for (const r of rows) {
        metrics.reaperRecoveries.inc({ to: r.status });
        metrics.leaseExpired(r);
        metrics.transitions.inc({ from: "running", to: r.status });
        if (r.status === "queued") notifier.notify(r.queue, { kind: r.kind, tenant: r.tenant });
      }
      // Every reaped job left a running slot (a requeued one keeps only its key's turn).
      capped.freed(rows.map((r) => r.queue));
      metrics.jobsFinished(rows);
      traceFinished(rows);
      finished(rows);
      total += rows.length;
      if (rows.length < limit) break;
    }
    // Queued jobs past their expiresAt (never claimable already; this records it, with events).
    for (;;) {
      const rows = await jobs.expireDue(limit);
      if (rows.length > 0) metrics.transitions.inc({ from: "queued", to: "cancelled" }, rows.length);
      finished(rows);
      if (rows.length < limit) break;
    }
    for (;;) {
      const rows = await jobs.releaseStragglers(limit);
      for (const q of new Set(rows.filter((r) => r.status === "queued").map((r) => r.queue))) notifier.notify(q);
      const cancelled = rows.filter((r) => r.status === "cancelled").length;
      if (cancelled > 0) metrics.transitions.inc({ from: "queued", to: "cancelled" }, cancelled);
      if (rows.length < limit) return total;
    }
  }

  /**
   * Finishes workflow cancellations past the levels their first statement resolved
   * (dependency_cascade): steps of up to eight levels each for up to a second. SKIP LOCKED
   * inside each step, so every worker process may run it at once. Returns the parents taken.
   */
  const cascadeOnce = () => continueCascade(deps.sql, Number.POSITIVE_INFINITY, Date.now() + 1000);

  /**
   * Ready: the database answers within 2 s and the migrations are applied. Why not ready is
   * for the log only: a driver's error names the database's host and port.
   */
  async function readiness(): Promise<{ ready: true } | { ready: false; detail: string; error?: unknown }> {
    try {
      const ok = await Promise.race([
        migrationsApplied(deps.sql),
        new Promise<boolean>((_, rej) => setTimeout(() => rej(new Error("database timeout")), 2000).unref()),
      ]);
      return ok ? { ready: true } : { ready: false, detail: "migrations not applied" };
    } catch (e) {
      return { ready: false, detail: "database unreachable", error: e };
    }
  }

  return { reapOnce, cascadeOnce, readiness };
}

export type MaintenanceService = ReturnType<typeof createMaintenanceService>;
