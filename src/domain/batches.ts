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

export type BatchTransition = "addJobs" | "seal" | "start" | "finalise" | "cancel" | "retry" | "jobRetry" | "reopen";

export const BATCH_TRANSITIONS: Record<BatchTransition, { from: readonly BatchStatus[]; to: readonly BatchStatus[] }> = {
  addJobs: { from: ["preparing"], to: ["preparing"] },
  seal: { from: ["preparing"], to: ["pending"] },
  start: { from: ["pending"], to: ["running"] },
  // pending is a legal predecessor: every job may be cancelled before any is claimed.
  finalise: { from: ["pending", "running"], to: ["succeeded", "failed", "partially_succeeded", "cancelled"] },
  cancel: { from: ["preparing", "pending", "running"], to: ["cancelled", "running", "pending"] },
  retry: { from: ["failed", "partially_succeeded", "cancelled"], to: ["pending"] },
  // One of its jobs retried while the batch is unfinished: counts move, the status stays.
  jobRetry: { from: ["pending", "running"], to: ["pending", "running"] },
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

/** The terminal status a batch takes from its jobs' final counts (cancel requested first, as the SQL). */
export function batchOutcome(c: { cancelRequested?: boolean; succeeded: number; failed: number; cancelled: number }): BatchStatus {
  const total = c.succeeded + c.failed + c.cancelled;
  const holds: Record<BatchOutcomeCondition, boolean> = {
    cancelRequested: c.cancelRequested === true,
    allSucceeded: c.succeeded === total,
    someSucceeded: c.succeeded > 0,
    someFailed: c.failed > 0,
    otherwise: true,
  };
  return BATCH_OUTCOME_RULES.find((r) => holds[r.when])!.status;
}
