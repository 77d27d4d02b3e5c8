// The job state machine as data. Every repository UPDATE derives its `status IN (...)` guard
// from this table, so a transition the table does not list cannot be written by any code path.

/** A job's statuses. waiting: submitted with dependsOn, not claimable until every parent finished (docs/workflows.md). */
export const JOB_STATUSES = ["queued", "running", "succeeded", "failed", "cancelled", "waiting"] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const TERMINAL_JOB_STATUSES = ["succeeded", "failed", "cancelled"] as const satisfies readonly JobStatus[];
export type TerminalJobStatus = (typeof TERMINAL_JOB_STATUSES)[number];

export type JobTransition =
  | "claim"
  | "cancel"
  | "expire"
  | "requestCancel"
  | "heartbeat"
  | "complete"
  | "fail"
  | "reap"
  | "release"
  | "batchRetry"
  | "retry"
  | "resolve";

interface TransitionRule {
  from: readonly JobStatus[];
  to: readonly JobStatus[];
  /** Later transitions of a running job are fenced by the lease token. */
  fencedByLease: boolean;
}

export const JOB_TRANSITIONS: Record<JobTransition, TransitionRule> = {
  claim: { from: ["queued"], to: ["running"], fencedByLease: false },
  cancel: { from: ["queued", "waiting"], to: ["cancelled"], fencedByLease: false },
  // A queued job past its expiresAt, ended by the reaper (lastError.code expired).
  expire: { from: ["queued"], to: ["cancelled"], fencedByLease: false },
  // A running job is not moved: the holder learns of the request on heartbeat.
  requestCancel: { from: ["running"], to: ["running"], fencedByLease: false },
  heartbeat: { from: ["running"], to: ["running"], fencedByLease: true },
  // A complete after a cancel request still succeeds: the work was done.
  complete: { from: ["running"], to: ["succeeded"], fencedByLease: true },
  fail: { from: ["running"], to: ["queued", "failed", "cancelled"], fencedByLease: true },
  reap: { from: ["running"], to: ["queued", "failed", "cancelled"], fencedByLease: false },
  // A lease whose poll answer never reached its client: the attempt did not run.
  release: { from: ["running"], to: ["queued"], fencedByLease: true },
  batchRetry: { from: ["failed", "cancelled"], to: ["queued"], fencedByLease: false },
  // The operator's job retry (POST /v1/jobs/{id}/retry, bulk retry): attempts reset, a new event identity.
  retry: { from: ["failed", "cancelled"], to: ["queued"], fencedByLease: false },
  // The statement that finishes a job's last parent (or its first failed one): released or cancelled
  // (dependency_failed). Written by jobline_resolve_dependents (drizzle/0013), whose guard is this row.
  resolve: { from: ["waiting"], to: ["queued", "cancelled"], fencedByLease: false },
};

export function fromStatuses(t: JobTransition): readonly JobStatus[] {
  return JOB_TRANSITIONS[t].from;
}

export function isTerminal(s: JobStatus): s is TerminalJobStatus {
  return (TERMINAL_JOB_STATUSES as readonly string[]).includes(s);
}
