// W3C Trace Context (https://www.w3.org/TR/trace-context/): the parts jobline stores and forwards.

const TRACEPARENT = /^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?$/;
const ZERO_TRACE = "0".repeat(32);
const ZERO_SPAN = "0".repeat(16);

/**
 * A traceparent as version 00 (what jobline stores and sends on), or null when it is not a
 * valid one. A later version is read by its first four fields, as the spec asks.
 */
export function normaliseTraceparent(v: string | undefined | null): string | null {
  if (typeof v !== "string" || v.length > 512) return null;
  const m = TRACEPARENT.exec(v.trim());
  if (!m) return null;
  const [, version, traceId, spanId, flags, rest] = m as unknown as [string, string, string, string, string, string | undefined];
  if (version === "ff" || traceId === ZERO_TRACE || spanId === ZERO_SPAN) return null;
  if (version === "00" && rest !== undefined) return null;
  return `00-${traceId}-${spanId}-${flags}`;
}

/** The trace id of a stored (normalised) traceparent. */
export const traceIdOf = (traceparent: string) => traceparent.slice(3, 35);

/** tracestate is kept as given when it is short printable ASCII (its list grammar is the tracer's concern). */
export function validTracestate(v: string | undefined | null): string | null {
  if (typeof v !== "string") return null;
  const s = v.trim();
  return s.length > 0 && s.length <= 512 && /^[\x20-\x7e]+$/.test(s) ? s : null;
}
