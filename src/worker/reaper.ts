import type { Container } from "../container.js";
import { every } from "./every.js";

/** One sweep of the lease reaper (services/maintenance.ts); returns how many leases it reaped. */
export const reapOnce = (c: Container, limit = 1000) => c.services.maintenance.reapOnce(limit);

/** The reaper loop, every JOBLINE_REAPER_INTERVAL_MS. */
export const startReaper = (c: Container) => every("reaper", c.config.JOBLINE_REAPER_INTERVAL_MS, () => reapOnce(c), c);
