import type postgres from "postgres";
import { codeOf } from "./errors.js";

/** deadlock_detected, lock_not_available (a bounded lock wait ran out). */
const RERUN_CODES = new Set(["40P01", "55P03"]);

/**
 * A transaction that a lock conflict rolled back is run again from the
 * start: each run is atomic, so a re-run repeats nothing, and having
 * released its locks it has let the other side finish.
 */
export async function inTx<T>(sql: postgres.Sql, fn: (tx: postgres.TransactionSql) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await sql.begin(fn)) as T;
    } catch (e) {
      if (attempt >= 8 || !RERUN_CODES.has(String(codeOf(e) ?? ""))) throw e;
      await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
    }
  }
}
