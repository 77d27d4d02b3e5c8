import { driverError } from "./client.js";
import { wasSent } from "./gate.js";

// What a database error means for the caller: rerun, refuse the value, or answer 503.

export const codeOf = (e: unknown): unknown => (driverError(e) as { code?: unknown } | null)?.code;

/**
 * A deadlock or serialization victim (40P01, 40001): PostgreSQL rolled the statement back, so it
 * changed nothing, and the same request may simply be sent again (HTTP 503).
 */
export const isConflictVictim = (e: unknown): boolean => {
  const code = codeOf(e);
  return code === "40P01" || code === "40001";
};

/**
 * PostgreSQL refused a value (SQLSTATE class 22 data exception, 54 program limit exceeded):
 * the statement changed nothing, and the same values would fail on every retry. In a
 * statement carrying several callers' values, only one of them may be at fault.
 */
export const isDataError = (e: unknown): boolean => {
  const code = codeOf(e);
  return typeof code === "string" && /^(22|54)/.test(code);
};

/**
 * The database cannot be reached or is restarting: the request changed nothing that was
 * acknowledged, and the same request may succeed in a moment (HTTP 503). A PostgreSQL error
 * is judged by its SQLSTATE alone: connection failures (08000, 08001, 08003, 08004, 08006;
 * not 08P01, a protocol violation, which is a bug, nor 08007, whose outcome is unknown),
 * shutdown, crash and start-up (57P01-57P03), too many connections (53300). Anything else
 * (postgres.js connection errors such as CONNECTION_CLOSED or CONNECT_TIMEOUT, Node socket
 * errors met while PostgreSQL goes away, such as EPIPE) by its code and message.
 */
export const isDbUnavailable = (e: unknown): boolean => {
  const err = driverError(e);
  const code = String((err as { code?: unknown } | null)?.code ?? "");
  // A SQLSTATE: five characters of a class PostgreSQL defines (EPIPE is not one).
  if (/^([0-9][0-9A-Z]|HV|P0|XX|F0)[0-9A-Z]{3}$/.test(code)) return /^(0800[01346]|57P0[1-3]|53300)$/.test(code);
  const message = String((err as { message?: unknown } | null)?.message ?? "");
  return /ECONNREFUSED|ECONNRESET|ECONNABORTED|EPIPE|ENOTCONN|ETIMEDOUT|CONNECT_TIMEOUT|CONNECTION_|DB_UNAVAILABLE/.test(`${code} ${message}`);
};

/**
 * Failures that certainly happened before anything could commit: no connection (refused,
 * timed out, the gate's refusal, PostgreSQL starting or full) or a statement the gate saw fail
 * before it was sent, or a transaction that lost its connection before COMMIT.
 */
export const NEVER_RAN = /^(DB_UNAVAILABLE|ECONNREFUSED|ENOTFOUND|EHOSTUNREACH|ENETUNREACH|EAI_AGAIN|CONNECT_TIMEOUT|57P03|53300)$/;

/**
 * The database may or may not have applied the statement: the connection died after it was
 * sent (CONNECTION_CLOSED, ECONNRESET, 57P01 admin shutdown, …, when not known to be unsent),
 * or PostgreSQL said so (08007). Sending the same request again is safe only when it is
 * idempotent (an Idempotency-Key, a fenced completion); the answer is 503 `outcome_unknown`.
 */
export const isOutcomeUnknown = (e: unknown): boolean => {
  const err = driverError(e);
  const code = String(codeOf(err) ?? "");
  if (code === "08007") return true;
  if (!isDbUnavailable(err) || NEVER_RAN.test(code)) return false;
  return wasSent(err) !== false;
};
