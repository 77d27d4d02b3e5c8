import type { WorkerDeps } from "../container.js";
import { every } from "./every.js";

/**
 * One sweep of the reaper: expired leases and deadlines, expired jobs (services/maintenance.ts),
 * then open batches past their seal time (services/batches.ts). Returns how many leases it reaped.
 */
export const reapOnce = async (c: WorkerDeps, limit = 1000) => {
  const reaped = await c.services.maintenance.reapOnce(limit);
  await c.services.batches.cancelUnsealed();
  return reaped;
};

/** The reaper loop, every JOBLINE_REAPER_INTERVAL_MS. */
export const startReaper = (c: WorkerDeps) => every("reaper", c.config.JOBLINE_REAPER_INTERVAL_MS, () => reapOnce(c), c);
