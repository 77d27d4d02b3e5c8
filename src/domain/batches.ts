/** The batch state machine as data; same rule as jobs: guards come from here. */
export const BATCH_STATUSES = [
  "preparing",
  "pending",
  "running",
  "succeeded",
  "failed",
  "partially_succeeded",
  "cancelled",
] as const;
export type BatchStatus = (typeof BATCH_STATUSES)[number];

export const TERMINAL_BATCH_STATUSES = [
  "succeeded",
  "failed",
  "partially_succeeded",
  "cancelled",
] as const satisfies readonly BatchStatus[];

export type BatchTransition = "addJobs" | "seal" | "start" | "finalise" | "cancelOpen" | "cancel" | "retry" | "jobRetry" | "reopen";

/** `to: "unchanged"`: the row moves (counts, flags, version) but keeps its status. */
export const BATCH_TRANSITIONS: Record<BatchTransition, { from: readonly BatchStatus[]; to: readonly BatchStatus[] | "unchanged" }> = {
  addJobs: { from: ["preparing"], to: ["preparing"] },
  seal: { from: ["preparing"], to: ["pending"] },
  start: { from: ["pending"], to: ["running"] },
  // pending is a legal predecessor: every job may be cancelled before any is claimed.
  finalise: { from: ["pending", "running"], to: ["succeeded", "failed", "partially_succeeded", "cancelled"] },
  // Cancel of an open batch seals it as it marks it (cancel requested), so no add can follow.
  cancelOpen: { from: ["preparing"], to: ["pending"] },
  // Cancel of a sealed batch marks it; its jobs' finalisation ends it (finalise).
  cancel: { from: ["pending", "running"], to: "unchanged" },
  retry: { from: ["failed", "partially_succeeded", "cancelled"], to: ["pending"] },
  // One of its jobs retried while the batch is unfinished: counts move, the status stays.
  jobRetry: { from: ["pending", "running"], to: "unchanged" },
  // One of its jobs retried after the batch finished: running again, a new generation (a new batch.completed).
  reopen: { from: ["failed", "partially_succeeded", "cancelled"], to: ["running"] },
};

export function batchFrom(t: BatchTransition): readonly BatchStatus[] {
  return BATCH_TRANSITIONS[t].from;
}

export function isBatchTerminal(s: BatchStatus): boolean {
  return (TERMINAL_BATCH_STATUSES as readonly string[]).includes(s);
}

/**
 * The terminal status a finished batch takes, as ordered rules: the first that holds wins.
 * The finalising SQL (repositories/jobs/finalise.ts) is written from this list, so the two agree.
 */
export const BATCH_OUTCOME_RULES = [
  { when: "cancelRequested", status: "cancelled" },
  { when: "allSucceeded", status: "succeeded" },
  { when: "someSucceeded", status: "partially_succeeded" },
  { when: "someFailed", status: "failed" },
  { when: "otherwise", status: "cancelled" },
] as const satisfies ReadonlyArray<{ when: string; status: BatchStatus }>;
export type BatchOutcomeCondition = (typeof BATCH_OUTCOME_RULES)[number]["when"];
