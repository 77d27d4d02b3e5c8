import type { Container } from "../container.js";
import { continueCascade } from "../services/jobs/workflows.js";
import { every } from "./every.js";

/** How often the duty looks for a cascade left over (by a request's bounded steps, or a crash). */
export const CASCADE_INTERVAL_MS = 250;

/**
 * Finishes workflow cancellations past the levels their first statement resolved
 * (dependency_cascade, drizzle/0013): steps of up to eight levels each for up to a second per tick.
 * SKIP LOCKED inside each step, so every worker process may run it at once.
 */
export const cascadeOnce = (c: Container) => continueCascade(c.sql, Number.POSITIVE_INFINITY, Date.now() + 1000);

export const startCascade = (c: Container) => every("cascade", CASCADE_INTERVAL_MS, () => cascadeOnce(c), c);
