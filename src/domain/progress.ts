// A job's progress report (sent with a heartbeat) and its limits. No I/O.
import { jsonProblem, pgUnsafeString } from "./json.js";

export const MAX_PROGRESS_MESSAGE_BYTES = 1024;
export const MAX_PROGRESS_DATA_BYTES = 16 * 1024;

export interface ProgressReport {
  percent?: number | undefined;
  message?: string | undefined;
  data?: unknown;
}

/** Why a report cannot be stored, or null: the same limits HTTP's schema applies. */
export function progressProblem(p: ProgressReport): string | null {
  if (p.percent !== undefined && !(typeof p.percent === "number" && p.percent >= 0 && p.percent <= 100))
    return "progress.percent must be a number from 0 to 100";
  if (p.message !== undefined) {
    if (typeof p.message !== "string") return "progress.message must be a string";
    if (Buffer.byteLength(p.message) > MAX_PROGRESS_MESSAGE_BYTES) return "progress.message exceeds 1 KiB";
    const bad = pgUnsafeString(p.message);
    if (bad) return `progress.message ${bad}`;
  }
  if (p.data !== undefined) {
    const bad = jsonProblem(p.data);
    if (bad) return `progress.data ${bad}`;
    if (Buffer.byteLength(JSON.stringify(p.data)) > MAX_PROGRESS_DATA_BYTES) return "progress.data exceeds 16 KiB of JSON";
  }
  return null;
}
