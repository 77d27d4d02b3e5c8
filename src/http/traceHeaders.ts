import { z } from "zod";
import { normaliseTraceparent, validTracestate } from "../domain/traceContext.js";

/** The W3C trace headers a submit reads. Any text is accepted: an invalid one is ignored, as the spec asks. */
export const TraceHeaders = {
  traceparent: z.string().optional().describe("W3C traceparent; an invalid one is ignored"),
  tracestate: z.string().optional().describe("W3C tracestate, kept with a valid traceparent"),
};

/**
 * The submit's trace context: the body's fields (what SDKs send) win; else the headers', when
 * the traceparent is valid (an invalid header is ignored, never refused).
 */
export function traceOf(
  body: { traceparent?: string | undefined; tracestate?: string | undefined },
  headers: { traceparent?: string | undefined; tracestate?: string | undefined },
): { traceparent?: string; tracestate?: string } {
  if (body.traceparent) return { traceparent: body.traceparent, ...(body.tracestate ? { tracestate: body.tracestate } : {}) };
  const tp = normaliseTraceparent(headers.traceparent);
  if (!tp) return {};
  const ts = validTracestate(headers.tracestate);
  return { traceparent: tp, ...(ts ? { tracestate: ts } : {}) };
}
