// What PostgreSQL's jsonb can store. No I/O.

const MAX_DEPTH = 64;

/**
 * PostgreSQL's jsonb refuses \u0000 and lone surrogates, and very deep nesting
 * can exhaust its stack: refuse those here as 400 rather than meet them as 500.
 */
export function jsonProblem(v: unknown, depth = 0): string | null {
  if (typeof v === "string") return pgUnsafeString(v);
  // `depth` counts the arrays and objects around v: [[1]] is two levels, so 64 nested pass and 65 do not.
  if (v !== null && typeof v === "object" && depth + 1 > MAX_DEPTH) return `nested deeper than ${MAX_DEPTH} levels`;
  // JSON.parse turns 1e400 into Infinity, which JSON.stringify would store as null.
  if (typeof v === "number" && !Number.isFinite(v)) return "contains a number outside the double range";
  if (Array.isArray(v)) {
    for (const x of v) {
      const p = jsonProblem(x, depth + 1);
      if (p) return p;
    }
    return null;
  }
  if (v !== null && typeof v === "object") {
    for (const [k, x] of Object.entries(v)) {
      const p = pgUnsafeString(k) ?? jsonProblem(x, depth + 1);
      if (p) return p;
    }
  }
  return null;
}

export function pgUnsafeString(s: string): string | null {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: NUL is exactly what PostgreSQL refuses.
  if (/\u0000/.test(s)) return "contains a NUL character";
  if (!s.isWellFormed()) return "contains a lone UTF-16 surrogate";
  return null;
}

/**
 * What stops a value computed in-process (a handler's result) from being
 * stored: JSON.stringify throws on a BigInt or a cycle, and jsonb refuses what
 * jsonProblem reports. Checked before the value joins a shared statement, where
 * one bad value would fail every call in it.
 */
export function storableProblem(v: unknown): string | null {
  const s = storable(v);
  return s.ok ? null : s.problem;
}

/** storableProblem, and the size of the text that would be stored (one serialisation for both). */
export function storable(v: unknown): { ok: true; bytes: number } | { ok: false; problem: string } {
  let text: string;
  try {
    text = JSON.stringify(v ?? null) ?? "null";
  } catch (e) {
    return { ok: false, problem: e instanceof Error ? e.message : "cannot be serialised as JSON" };
  }
  // Check the text that will be stored, not the object: toJSON and private fields can
  // make the two differ.
  const problem = jsonProblem(JSON.parse(text));
  return problem ? { ok: false, problem } : { ok: true, bytes: Buffer.byteLength(text) };
}
