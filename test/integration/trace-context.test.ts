// W3C trace context (issue 29 point 8): a submit's traceparent travels with the job to the
// worker and on to its webhook; with an OpenTelemetry SDK registered, jobline's spans for
// submit, claim, finalisation, delivery and in-process work all join that trace.
import type { AddressInfo } from "node:net";
import { context, propagation, trace } from "@opentelemetry/api";
import { AsyncLocalStorageContextManager } from "@opentelemetry/context-async-hooks";
import { W3CTraceContextPropagator } from "@opentelemetry/core";
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from "@opentelemetry/sdk-trace-base";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { Jobline, type WorkerJob } from "../../clients/typescript/src/index.js";
import { createWorker } from "../../src/worker/inProcess.js";
import { createWebhookDispatcher, type WebhookDispatcher } from "../../src/worker/webhooks.js";
import { startReceiver } from "../e2e/helpers/util.js";
import { useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

const t = useTestEnv("trace_context", { JOBLINE_WEBHOOK_ALLOW_HOSTS: "127.0.0.1" }, { listen: true });
const TRACE = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT = "00f067aa0ba902b7";
const TP = `00-${TRACE}-${PARENT}-01`;
const traceIdOf = (tp: unknown) => String(tp).split("-")[1];

let dispatcher: WebhookDispatcher | undefined;
const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  await dispatcher?.stop();
  dispatcher = undefined;
});
afterAll(async () => {
  for (const c of closers) await c();
});

/** Real HTTP to the listening app. */
async function call(method: string, path: string, key: string, body?: unknown, headers: Record<string, string> = {}) {
  const { port } = t.env.app.server.address() as AddressInfo;
  const r = await fetch(`http://127.0.0.1:${port}${path}`, {
    method,
    headers: { authorization: key, ...(body === undefined ? {} : { "content-type": "application/json" }), ...headers },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, read field by field
  return { status: r.status, body: (await r.json()) as Record<string, any> };
}

function startDispatcher() {
  dispatcher = createWebhookDispatcher({
    ...t.env.c,
    outbox: t.env.c.repos.outbox,
    tenants: t.env.c.repos.tenants,
    config: { ...t.env.c.config, JOBLINE_WEBHOOK_ALLOW_HOSTS: "127.0.0.1", JOBLINE_WEBHOOK_POLL_MS: 20 },
  });
  dispatcher.start();
}

async function receiver() {
  const r = await startReceiver();
  closers.push(r.close);
  return r;
}

/** submit (with `headers`) → process-next → complete → webhook; what each step saw. */
async function roundTrip(queue: string, headers: Record<string, string>, body: Record<string, unknown> = {}) {
  const r = await receiver();
  const sub = await call("POST", "/v1/jobs", t.client, { queue, kind: "k", payload: {}, webhookUrl: r.url, ...body }, headers);
  expect(sub.status, JSON.stringify(sub.body)).toBe(201);
  const poll = await call("POST", "/v1/process-next", t.worker, { queues: [queue], workerId: "w" });
  const job = poll.body.jobs[0];
  expect(job.id).toBe(sub.body.id);
  const done = await call("POST", `/v1/jobs/${job.id}/complete`, t.worker, { leaseToken: job.leaseToken, result: { ok: true } });
  expect(done.status).toBe(200);
  startDispatcher();
  const delivery = await until("the webhook", () => r.deliveries[0]);
  const got = await call("GET", `/v1/jobs/${job.id}`, t.client);
  return { submitted: sub.body, claimed: job, delivery, got: got.body };
}

describe("trace context without an OpenTelemetry SDK (the API's no-op)", () => {
  it("a traceparent header travels submit → process-next → complete → webhook unchanged", async () => {
    const { submitted, claimed, delivery, got } = await roundTrip("tc1", { traceparent: TP, tracestate: "vendor=abc" });
    expect(submitted.traceparent).toBe(TP);
    expect(claimed.traceparent).toBe(TP);
    expect(got.traceparent).toBe(TP);
    expect(got.tracestate).toBe("vendor=abc");
    expect(delivery.headers.traceparent).toBe(TP);
    expect(delivery.headers.tracestate).toBe("vendor=abc");
    expect(JSON.parse(delivery.body).data.traceparent).toBe(TP);
  });

  it("the body's traceparent (what SDKs send) does the same; a later version is stored as version 00", async () => {
    const { claimed, delivery } = await roundTrip("tc2", {}, { traceparent: `01-${TRACE}-${PARENT}-00-future` });
    expect(claimed.traceparent).toBe(`00-${TRACE}-${PARENT}-00`);
    expect(delivery.headers.traceparent).toBe(`00-${TRACE}-${PARENT}-00`);
  });

  it("an invalid header is ignored (201, no trace context); an invalid body field is a 400", async () => {
    for (const bad of ["garbage", `00-${"0".repeat(32)}-${PARENT}-01`, `ff-${TRACE}-${PARENT}-01`, `00-${TRACE}-${PARENT}-01-extra`]) {
      const h = await call("POST", "/v1/jobs", t.client, { queue: "tc3", kind: "k" }, { traceparent: bad, tracestate: "a=b" });
      expect(h.status).toBe(201);
      expect(h.body.traceparent).toBeNull();
      expect(h.body.tracestate).toBeNull();
      const b = await call("POST", "/v1/jobs", t.client, { queue: "tc3", kind: "k", traceparent: bad });
      expect(b.status).toBe(400);
    }
    const none = await call("POST", "/v1/jobs", t.client, { queue: "tc3", kind: "k" });
    expect(none.body.traceparent).toBeNull();
  });

  it("a claim by id answers with it; an Idempotency-Key replay from another trace is the same job, not a 422", async () => {
    const a = await call("POST", "/v1/jobs", t.client, { queue: "tc4", kind: "k" }, { traceparent: TP, "idempotency-key": "tc4" });
    const other = `00-${"a".repeat(32)}-${PARENT}-01`;
    const b = await call("POST", "/v1/jobs", t.client, { queue: "tc4", kind: "k" }, { traceparent: other, "idempotency-key": "tc4" });
    expect(b.status).toBe(200);
    expect(b.body.id).toBe(a.body.id);
    const c = await call("POST", `/v1/jobs/${a.body.id}/claim`, t.worker, { workerId: "w" });
    expect(c.status).toBe(200);
    expect(c.body.traceparent).toBe(TP);
  });

  it("jobs of a batch take the request's traceparent unless they name their own", async () => {
    const own = `00-${"b".repeat(32)}-${PARENT}-01`;
    const r = await call(
      "POST",
      "/v1/batches",
      t.client,
      { jobs: [{ queue: "tc5", kind: "k" }, { queue: "tc5", kind: "k", traceparent: own }] },
      { traceparent: TP },
    );
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const list = await call("GET", `/v1/jobs?batchId=${r.body.id}`, t.client);
    expect(list.body.items.map((j: { traceparent: string }) => j.traceparent).sort()).toEqual([TP, own].sort());
  });

  it("a schedule whose job template carries one makes jobs that carry it", async () => {
    const s = await call("POST", "/v1/schedules", t.client, { name: "tc6", cron: "* * * * *", job: { queue: "tc6", kind: "k", traceparent: TP } });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    // The scheduler's clock, moved to the tick.
    const made = await t.env.c.services.schedules.runDue(new Date(s.body.nextRunAt));
    const mine = made.filter((j) => j.scheduleId === s.body.id);
    expect(mine).toHaveLength(1);
    expect((await call("GET", `/v1/jobs/${mine[0]!.id}`, t.client)).body.traceparent).toBe(TP);
  });
});

describe("trace context with an OpenTelemetry SDK registered", () => {
  const exporter = new InMemorySpanExporter();
  beforeAll(() => {
    const provider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(exporter)] });
    trace.setGlobalTracerProvider(provider);
    context.setGlobalContextManager(new AsyncLocalStorageContextManager().enable());
    propagation.setGlobalPropagator(new W3CTraceContextPropagator());
  });
  afterAll(() => {
    trace.disable();
    context.disable();
    propagation.disable();
  });
  const spans = (name: string) => exporter.getFinishedSpans().filter((s) => s.name === name);

  it("submit, claim, finalisation and delivery spans share the submit's trace id, and the webhook names the delivery span", async () => {
    exporter.reset();
    const { submitted, claimed, delivery } = await roundTrip("tc7", { traceparent: TP });
    const [submit] = spans("jobline.submit");
    expect(submit?.spanContext().traceId).toBe(TRACE);
    expect(submit?.parentSpanContext?.spanId).toBe(PARENT);
    // The job carries the submit span's context: the worker's spans become its children.
    expect(submitted.traceparent).toBe(`00-${TRACE}-${submit!.spanContext().spanId}-01`);
    expect(claimed.traceparent).toBe(submitted.traceparent);
    const [claim] = spans("jobline.claim");
    const [finalise] = spans("jobline.finalise");
    expect(claim?.spanContext().traceId).toBe(TRACE);
    expect(claim?.attributes["messaging.message.id"]).toBe(submitted.id);
    expect(finalise?.spanContext().traceId).toBe(TRACE);
    expect(finalise?.attributes["jobline.job.status"]).toBe("succeeded");
    const webhook = await until("the delivery span", () => spans("jobline.webhook")[0]);
    expect(webhook.spanContext().traceId).toBe(TRACE);
    expect(traceIdOf(delivery.headers.traceparent)).toBe(TRACE);
    expect(delivery.headers.traceparent).toBe(`00-${TRACE}-${webhook.spanContext().spanId}-01`);
  });

  it("process-next's acknowledgement records the finalisation span too", async () => {
    exporter.reset();
    await call("POST", "/v1/jobs", t.client, { queue: "tc8", kind: "k" }, { traceparent: TP });
    const poll = await call("POST", "/v1/process-next", t.worker, { queues: ["tc8"], workerId: "w" });
    const job = poll.body.jobs[0];
    const ack = await call("POST", "/v1/process-next", t.worker, { queues: ["tc8"], workerId: "w", complete: [{ id: job.id, leaseToken: job.leaseToken }] });
    expect(ack.body.completed[0].status).toBe(200);
    const fin = spans("jobline.finalise").filter((s) => s.attributes["messaging.message.id"] === job.id);
    expect(fin.map((s) => s.spanContext().traceId)).toEqual([TRACE]);
  });

  it("the in-process worker runs the handler inside the job's trace", async () => {
    exporter.reset();
    const sub = await call("POST", "/v1/jobs", t.client, { queue: "tc9", kind: "k" }, { traceparent: TP });
    const seen: Array<string | undefined> = [];
    const w = createWorker({ container: t.env.c, queues: ["tc9"], waitMs: 200, handlers: { k: async () => void seen.push(trace.getActiveSpan()?.spanContext().traceId) } });
    try {
      await until("the job run", () => (seen.length > 0 ? true : undefined));
    } finally {
      await w.stop();
    }
    expect(seen).toEqual([TRACE]);
    const [proc] = spans("jobline.process");
    expect(proc?.attributes["messaging.message.id"]).toBe(sub.body.id);
    // A child of the span the job carries (the submit's).
    expect(proc?.parentSpanContext?.spanId).toBe(String(sub.body.traceparent).split("-")[2]);
    // The own acknowledgement's lean rows carry the trace context too.
    await until("its finalisation span", () => spans("jobline.finalise").find((s) => s.attributes["messaging.message.id"] === sub.body.id));
  });

  it("the SDK worker hands the handler job.traceparent; the wrapper docs/tracing.md shows runs it inside the job's trace", async () => {
    const { port } = t.env.app.server.address() as AddressInfo;
    const apiKey = (k: string) => k.replace(/^Bearer /, "");
    const producer = new Jobline({ baseUrl: `http://127.0.0.1:${port}`, apiKey: apiKey(t.client) });
    const job = await producer.submit("tc10", "k", {}, { traceparent: TP });
    expect(job.traceparent).toMatch(new RegExp(`^00-${TRACE}-[0-9a-f]{16}-01$`));
    // docs/tracing.md's wrapper, as a user writes it with @opentelemetry/api.
    const tracer = trace.getTracer("app");
    const traced =
      <J extends WorkerJob, C>(h: (job: J, ctx: C) => unknown) =>
      (job: J, ctx: C) =>
        context.with(propagation.extract(context.active(), { traceparent: job.traceparent ?? "", tracestate: job.tracestate ?? "" }), () =>
          tracer.startActiveSpan(`process ${job.kind}`, async (span) => {
            try {
              return await h(job, ctx);
            } finally {
              span.end();
            }
          }),
        );
    const seen: Array<{ traceparent: string | null; active?: string }> = [];
    const worker = new Jobline({ baseUrl: `http://127.0.0.1:${port}`, apiKey: apiKey(t.worker) }).work(
      "tc10",
      traced(async (j) => void seen.push({ traceparent: j.traceparent, active: trace.getActiveSpan()?.spanContext().traceId })),
      { waitMs: 200 },
    );
    try {
      await until("the SDK worker's run", () => (seen.length > 0 ? true : undefined));
    } finally {
      await worker.stop();
    }
    expect(seen).toEqual([{ traceparent: job.traceparent, active: TRACE }]);
  });
});
