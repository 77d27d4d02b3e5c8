// What trace context costs the hot path, in this process's CPU (the SQL gains two returned
// columns and nothing else): `npx tsx bench/tracing-overhead.ts [rows]`. First with the
// @opentelemetry/api no-op (no SDK registered), then with a BasicTracerProvider whose exporter
// drops spans. Fastest of 30 runs: on a shared machine the others measure the neighbours.
import { trace } from "@opentelemetry/api";
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from "@opentelemetry/sdk-trace-base";
import { endSpan, runTraced, startSubmitSpan, traceClaimed, traceFinished } from "../src/tracing.js";

const ROWS = Number(process.argv[2] ?? 2000);
const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const rows = (tp: string | null) =>
  Array.from({ length: ROWS }, (_, i) => ({ id: `0190-${i}`, queue: "q", kind: "k", status: "running", attempts: 1, traceparent: tp, tracestate: null }));
const traced = rows(TP);
const untraced = rows(null);

/** ns per call of f: the fastest of 30 runs of `n` calls, after a warm-up. */
function ns(n: number, f: () => void): number {
  for (let i = 0; i < n; i++) f();
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 30; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) f();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

/** ns per in-process handler run (an async no-op handler), fastest of 30 runs of n awaited calls. */
async function nsAsync(n: number, job: (typeof traced)[number]): Promise<number> {
  const f = async () => undefined;
  let best = Number.POSITIVE_INFINITY;
  for (let r = 0; r < 31; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) await runTraced(job, f);
    if (r > 0) best = Math.min(best, Number(process.hrtime.bigint() - t0) / n);
  }
  return best;
}

async function round(label: string) {
  const submitNone = ns(2000, () => endSpan(startSubmitSpan({ traceparent: null }, "q", "k").span, { ok: true, id: "x" }));
  const submitTp = ns(2000, () => endSpan(startSubmitSpan({ traceparent: TP }, "q", "k").span, { ok: true, id: "x" }));
  const claimUntraced = ns(2, () => traceClaimed(untraced)) / ROWS;
  const claimTraced = ns(2, () => traceClaimed(traced)) / ROWS;
  const finTraced = ns(2, () => traceFinished(traced)) / ROWS;
  const runUntraced = await nsAsync(2000, untraced[0]!);
  const runWith = await nsAsync(2000, traced[0]!);
  console.log(
    `${label}: in-process handler run ${runUntraced.toFixed(0)} ns (job without trace context) / ${runWith.toFixed(0)} ns (with)`,
  );
  console.log(
    `${label}: submit span ${submitNone.toFixed(0)} ns (no traceparent) / ${submitTp.toFixed(0)} ns (with); ` +
      `claim spans per row ${claimUntraced.toFixed(1)} ns (rows without trace context) / ${claimTraced.toFixed(1)} ns (with); ` +
      `finalisation spans per row ${finTraced.toFixed(1)} ns (with)`,
  );
}

await round("no SDK (API no-op)");
const drop: SpanExporter = { export: (_s, done) => done({ code: 0 }), shutdown: async () => {} };
const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(drop, { maxQueueSize: 1_000_000 })] });
trace.setGlobalTracerProvider(provider);
await round("SDK registered (spans made, exporter drops them)");
await provider.shutdown();
