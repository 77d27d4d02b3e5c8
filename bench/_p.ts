import { traceClaimed, contextOf } from "../src/tracing.js";
import { trace, SpanKind } from "@opentelemetry/api";
const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const rows = Array.from({ length: 2000 }, (_, i) => ({ id: `0190-${i}`, queue: "q", kind: "k", status: "running", attempts: 1, traceparent: TP, tracestate: null }));
const out: number[] = [];
for (let k = 0; k < 20; k++) { const t0 = process.hrtime.bigint(); traceClaimed(rows); out.push(Number(process.hrtime.bigint() - t0) / 2000); }
console.log("traceClaimed ns/row", out.map((x) => x.toFixed(0)).join(" "));
const tr = trace.getTracer("y");
const o2: number[] = [];
for (let k = 0; k < 20; k++) { const t0 = process.hrtime.bigint(); for (const r of rows) { const c = contextOf(r); tr.startSpan("x", { kind: SpanKind.CONSUMER, attributes: { a: r.id } }, c).end(); } o2.push(Number(process.hrtime.bigint() - t0) / 2000); }
console.log("inline ns/row", o2.map((x) => x.toFixed(0)).join(" "));
