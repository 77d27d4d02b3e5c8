/**
 * Outcomes are data: a repository reports "nothing changed" as null and the
 * service turns that into one of these, which HTTP maps to a status code.
 */
export type Outcome<T, E extends string> = { ok: true; value: T; replay?: boolean } | { ok: false; error: E; detail?: string };

export const ok = <T>(value: T, replay = false) => ({ ok: true as const, value, replay });
export const err = <E extends string>(error: E, detail?: string) => ({ ok: false as const, error, detail });

export type ErrorCode =
  | "not_found"
  | "not_queued"
  | "not_claimable"
  | "queue_paused"
  | "concurrency_limited"
  | "rate_limited"
  | "terminal"
  | "not_retryable"
  | "not_finished"
  | "lease_lost"
  | "timeout"
  | "not_running"
  | "version_mismatch"
  | "idempotency_mismatch"
  | "payload_too_large"
  | "batch_sealed"
  | "batch_cancelled"
  | "batch_not_retryable"
  | "batch_not_cancellable"
  | "name_taken"
  | "forbidden"
  | "invalid"
  | "unavailable"
  | "internal";
