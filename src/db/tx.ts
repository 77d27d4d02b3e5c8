import type postgres from "postgres";
import { driverError } from "./client.js";
import { codeOf, isDbUnavailable, isOutcomeUnknown, NEVER_RAN } from "./errors.js";
import { markSent } from "./gate.js";

/** deadlock_detected, lock_not_available (a bounded lock wait ran out). */
const RERUN_CODES = new Set(["40P01", "55P03"]);

/**
 * A transaction that a lock conflict rolled back is run again from the
 * start: each run is atomic, so a re-run repeats nothing, and having
 * released its locks it has let the other side finish.
 */
export async function inTx<T>(sql: postgres.Sql, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    // A connection lost before COMMIT was sent rolled everything back; after, the outcome is unknown.
    let committing = false;
    try {
      return (await sql.begin(async (tx) => {
        const out = await fn(tx);
        committing = true;
        return out;
      })) as T;
    } catch (e) {
      markSent(driverError(e), committing);
      if (attempt >= 8 || !RERUN_CODES.has(String(codeOf(e) ?? ""))) throw e;
      await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
    }
  }
}

/**
 * Runs `fn`, and once more at once when its connection was lost and running it again is safe:
 * the statement certainly did nothing, or `idempotent` says a second run finds the first one's
 * effect (a fenced completion, an insert keyed by an Idempotency-Key). A killed backend then
 * costs one statement on a fresh connection instead of a 503 and the client's resend. Not
 * while the gate fails fast: PostgreSQL is away, and the client is told so at once.
 */
export async function retryIfLost<T>(fn: () => Promise<T>, idempotent: boolean): Promise<T> {
  try {
    return await rerunIfDeadlocked(fn);
  } catch (e) {
    if (!isDbUnavailable(e) || NEVER_RAN.test(String(codeOf(e) ?? "")) || (!idempotent && isOutcomeUnknown(e))) throw e;
    return rerunIfDeadlocked(fn);
  }
}

/**
 * Runs one autocommit statement again when PostgreSQL chose it as a deadlock victim: it was
 * rolled back whole, so a re-run repeats nothing. Workflows make such victims possible
 * (docs/workflows.md: a dependent and its batch locked in either order). Never inside a transaction.
 */
export async function rerunIfDeadlocked<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (e) {
      if (attempt >= 8 || codeOf(e) !== "40P01") throw e;
      await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
    }
  }
}
