import type { WorkerDeps } from "../container.js";
import { every } from "./every.js";

/** How often the duty looks for a cascade left over (by a request's bounded steps, or a crash). */
export const CASCADE_INTERVAL_MS = 250;

/** One pass over the workflow cancellations left in dependency_cascade (services/maintenance.ts). */
export const cascadeOnce = (c: Pick<WorkerDeps, "services">) => c.services.maintenance.cascadeOnce();

export const startCascade = (c: WorkerDeps) => every("cascade", CASCADE_INTERVAL_MS, () => cascadeOnce(c), c);
