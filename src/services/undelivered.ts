import type { Queryable } from "../db/client.js";
import type { Metrics } from "../metrics.js";
import type { JobRow } from "../repositories/jobs.js";
import { releaseIfLeased } from "../repositories/jobs/transitions.js";
import type { Notifier } from "./notifier.js";

/**
 * Jobs leased to a poll whose answer never reached its client (seed: claimed_then_missing):
 * given back at once instead of after their lease, and counted. Only leases still held by
 * the tokens handed out here move; the rest changed meanwhile and are left as they are.
 */
export async function releaseUndelivered(
  d: { sql: Queryable; metrics: Metrics; notifier: Notifier },
  rows: ReadonlyArray<Pick<JobRow, "id" | "leaseToken">>,
): Promise<JobRow[]> {
  const items = rows.flatMap((r) => (r.leaseToken ? [{ id: r.id, leaseToken: r.leaseToken }] : []));
  const released = await releaseIfLeased(items, d.sql);
  for (const r of released) {
    d.metrics.leaseReleased(r, "undelivered");
    d.metrics.transitions.inc({ from: "running", to: "queued" });
  }
  for (const q of new Set(released.map((r) => r.queue))) d.notifier.notify(q);
  return released;
}
