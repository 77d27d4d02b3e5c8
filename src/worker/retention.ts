import type { WorkerDeps } from "../container.js";
import { every } from "./every.js";

/** One retention pass (services/retention.ts). */
export const retainOnce = (c: WorkerDeps, chunk = 1000) => c.services.retention.retainOnce(chunk);

/** The retention loop, every JOBLINE_RETENTION_INTERVAL_MS. */
export const startRetention = (c: WorkerDeps) => every("retention", c.config.JOBLINE_RETENTION_INTERVAL_MS, () => retainOnce(c), c);
