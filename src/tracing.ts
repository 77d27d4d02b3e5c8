import {
  type Context,
  context,
  createTraceState,
  ROOT_CONTEXT,
  type Span,
  SpanKind,
  type SpanContext,
  SpanStatusCode,
  trace,
} from "@opentelemetry/api";
import { normaliseTraceparent } from "./domain/traceContext.js";

// OpenTelemetry spans around submit, claim, finalisation and webhook delivery (docs/tracing.md).
// Without a registered SDK every call here is the API's no-op: a span carries its parent's
// context and records nothing. The trace context a job carries is its stored traceparent.

/** A ProxyTracer: it finds the provider an application registers later, at its first span after that. */
const tracer = trace.getTracer("jobline");

export interface TraceCarrier {
  traceparent: string | null;
  tracestate?: string | null;
}

const isStoredForm = (tp: string) => tp.length === 55 && tp.startsWith("00-") && tp[35] === "-" && tp[52] === "-";

/** The context a stored traceparent names, as a remote parent; `base` when there is none. */
export function contextOf(t: TraceCarrier, base: Context = ROOT_CONTEXT): Context {
  // Stored values were normalised on the way in: the shape check is enough (the API checks the ids).
  const tp = t.traceparent && (isStoredForm(t.traceparent) ? t.traceparent : normaliseTraceparent(t.traceparent));
  if (!tp) return base;
  const sc: SpanContext = {
    traceId: tp.slice(3, 35),
    spanId: tp.slice(36, 52),
    traceFlags: Number.parseInt(tp.slice(53, 55), 16),
    isRemote: true,
    ...(t.tracestate ? { traceState: createTraceState(t.tracestate) } : {}),
  };
  return trace.setSpanContext(base, sc);
}

/** The traceparent and tracestate to hand on for a span (its parent's when no SDK records it). */
export function carrierOf(span: Span): TraceCarrier {
  const sc = span.spanContext();
  if (!trace.isSpanContextValid(sc)) return { traceparent: null, tracestate: null };
  return {
    traceparent: `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, "0")}`,
    tracestate: sc.traceState?.serialize() || null,
  };
}

const jobAttrs = (r: { id: string; queue: string; kind: string }) => ({
  "messaging.system": "jobline",
  "messaging.destination.name": r.queue,
  "messaging.message.id": r.id,
  "jobline.job.kind": r.kind,
});

/**
 * The submit's span (PRODUCER), child of the given trace context, else of the active one.
 * What the job stores is this span's context, so the worker's and the webhook's spans are its children.
 */
export function startSubmitSpan(t: TraceCarrier, queue: string, kind: string) {
  const span = tracer.startSpan(
    "jobline.submit",
    { kind: SpanKind.PRODUCER, attributes: { "messaging.system": "jobline", "messaging.destination.name": queue, "jobline.job.kind": kind } },
    t.traceparent ? contextOf(t) : context.active(),
  );
  const carrier = carrierOf(span);
  // No SDK: the no-op span has its parent's context, and the job keeps the caller's tracestate.
  return { span, carrier: { traceparent: carrier.traceparent, tracestate: carrier.tracestate ?? t.tracestate ?? null } };
}

export function endSpan(span: Span, outcome: { ok: boolean; id?: string | undefined; error?: unknown }) {
  if (outcome.id) span.setAttribute("messaging.message.id", outcome.id);
  if (!outcome.ok) span.setStatus({ code: SpanStatusCode.ERROR, message: outcome.error instanceof Error ? outcome.error.message : String(outcome.error ?? "") });
  span.end();
}

type TracedRow = { id: string; queue: string; kind: string; status: string; traceparent?: string | null; tracestate?: string | null };

/**
 * One span per job that carries trace context, recorded when the statement has returned
 * (claims and finalisations are known only then): it starts at `since` (this process's
 * clock when the call began) and ends now. Rows without trace context cost one check.
 */
function recordEach(name: string, kind: SpanKind, rows: ReadonlyArray<TracedRow>, since: number | undefined, extra?: (r: TracedRow) => Record<string, string | number>) {
  for (const r of rows) {
    if (!r.traceparent) continue;
    const span = tracer.startSpan(
      name,
      { kind, startTime: since, attributes: { ...jobAttrs(r), "jobline.job.status": r.status, ...extra?.(r) } },
      contextOf({ traceparent: r.traceparent, tracestate: r.tracestate ?? null }),
    );
    if (r.status === "failed") span.setStatus({ code: SpanStatusCode.ERROR });
    const recording = span.isRecording();
    span.end();
    // A sampled parent and still no recording: no SDK (or one that records nothing), so the
    // other rows would make no-op spans too (about 1 µs each, bench/tracing-overhead.ts).
    if (!recording && (Number.parseInt(r.traceparent.slice(-2), 16) & 1) === 1) return;
  }
}

/** Claim spans (CONSUMER) of the jobs a claim statement leased. */
export const traceClaimed = (rows: ReadonlyArray<TracedRow & { attempts?: number }>, since?: number) =>
  recordEach("jobline.claim", SpanKind.CONSUMER, rows, since, (r) => ({ "jobline.job.attempt": (r as { attempts?: number }).attempts ?? 0 }));

/** Finalisation spans of jobs a statement took out of running (complete, fail, the reaper). */
export const traceFinished = (rows: ReadonlyArray<TracedRow>, since?: number) => recordEach("jobline.finalise", SpanKind.INTERNAL, rows, since);

/** A webhook delivery's span (CLIENT), child of the job's context; its traceparent goes in the request. */
export function startDeliverySpan(t: TraceCarrier, eventType: string, url: string) {
  const span = tracer.startSpan(
    "jobline.webhook",
    { kind: SpanKind.CLIENT, attributes: { "messaging.system": "jobline", "jobline.event.type": eventType, "url.full": url } },
    contextOf(t),
  );
  const c = carrierOf(span);
  return { span, carrier: { traceparent: c.traceparent, tracestate: c.tracestate ?? t.tracestate ?? null } };
}

/**
 * Runs an in-process handler inside a span (CONSUMER) that is a child of the job's trace
 * context, so spans the handler makes join the job's trace. A job without one runs as it is.
 */
export function runTraced<T>(job: { id: string; queue: string; kind: string; traceparent: string | null; tracestate: string | null }, f: () => Promise<T>): Promise<T> {
  if (!job.traceparent) return f();
  const parent = contextOf(job);
  const span = tracer.startSpan("jobline.process", { kind: SpanKind.CONSUMER, attributes: jobAttrs(job) }, parent);
  let p: Promise<T>;
  try {
    p = context.with(trace.setSpan(parent, span), f);
  } catch (e) {
    p = Promise.reject(e);
  }
  return p.then(
    (v) => {
      span.end();
      return v;
    },
    (e: unknown) => {
      span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
      span.end();
      throw e;
    },
  );
}
