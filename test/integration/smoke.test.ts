import { describe, expect, it } from "vitest";
import { useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

const setup = useTestEnv("smoke");

describe("submit → process-next → complete", () => {
  it("runs the happy path over HTTP", async () => {
    const client = await setup.env.key("acme", "client");
    const worker = await setup.env.key("acme", "worker");
    const sub = await setup.env.http().post("/v1/jobs").set("authorization", client).send({ queue: "q", kind: "k", payload: { a: 1 } });
    expect(sub.status).toBe(201);
    expect(sub.headers.location).toBe(`/v1/jobs/${sub.body.id}`);
    expect(sub.headers.etag).toBe('"1"');
    const pn = await setup.env.http().post("/v1/process-next").set("authorization", worker).send({ queues: ["q"], workerId: "w1" });
    expect(pn.status).toBe(200);
    expect(pn.body.jobs).toHaveLength(1);
    const job = pn.body.jobs[0];
    expect(job.status).toBe("running");
    expect(job.attempts).toBe(1);
    const done = await setup.env.http().post(`/v1/jobs/${job.id}/complete`).set("authorization", worker).send({ leaseToken: job.leaseToken, result: { ok: true } });
    expect(done.status).toBe(200);
    expect(done.body.status).toBe("succeeded");
    const again = await setup.env.http().post(`/v1/jobs/${job.id}/complete`).set("authorization", worker).send({ leaseToken: job.leaseToken, result: { ok: true } });
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(done.body.version);
    const get = await setup.env.http().get(`/v1/jobs/${job.id}`).set("authorization", client);
    expect(get.body.status).toBe("succeeded");
    expect(get.body.payload).toEqual({ a: 1 });
    expect(get.body.result).toEqual({ ok: true });
    // Stored as JSON objects, not as JSON-encoded strings.
    const [types] = await setup.env.c.sql`SELECT jsonb_typeof(payload) AS p, jsonb_typeof(result) AS r FROM jobs WHERE id = ${job.id}`;
    expect(types).toEqual({ p: "object", r: "object" });
    const bad = await setup.env.http().post("/v1/jobs").set("authorization", client).send({ queue: "q", kind: "k", extra: 1 });
    expect(bad.status).toBe(400);
    expect(bad.headers["content-type"]).toMatch(/application\/problem\+json/);
  });
});

describe("request ids and the request-duration metric", () => {
  const counted = async (labels: { method: string; route: string; status: string }) =>
    (await setup.env.c.metrics.httpDuration.get()).values.find(
      (v) =>
        v.metricName === "jobline_http_request_duration_seconds_count" &&
        v.labels.method === labels.method &&
        v.labels.route === labels.route &&
        v.labels.status === labels.status,
    )?.value ?? 0;

  it("echoes a client's x-request-id and gives every other response one, errors included", async () => {
    const given = await setup.env.http().get("/healthz").set("x-request-id", "req-abc-123");
    expect(given.status).toBe(200);
    expect(given.headers["x-request-id"]).toBe("req-abc-123");
    const uuid = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
    const worker = await setup.env.key("acme", "worker");
    for (const r of [
      await setup.env.http().get("/healthz"),
      await setup.env.http().get("/v1/no-such-route"),
      await setup.env.http().post("/v1/process-next").send({ queues: ["q"], workerId: "w" }),
      await setup.env.http().post("/v1/process-next").set("authorization", worker).send({ queues: [] }),
    ]) expect(r.headers["x-request-id"]).toMatch(uuid);
    const ids = await Promise.all([1, 2, 3].map(() => setup.env.http().get("/healthz").then((r) => r.headers["x-request-id"])));
    expect(new Set(ids).size).toBe(3);
  });

  it("counts each response once in jobline_http_request_duration_seconds, by route and status", async () => {
    const worker = await setup.env.key("acme", "worker");
    const labels = { method: "POST", route: "/v1/process-next", status: "400" };
    const notFound = { method: "GET", route: "unmatched", status: "404" };
    const [before, before404] = [await counted(labels), await counted(notFound)];
    await setup.env.http().post("/v1/process-next").set("authorization", worker).send({ queues: [] });
    await setup.env.http().post("/v1/process-next").set("authorization", worker).send({ queues: [] });
    await setup.env.http().get("/v1/no-such-route");
    await until(
      "both counts",
      async () => ((await counted(labels)) === before + 2 && (await counted(notFound)) === before404 + 1) || undefined,
      5000,
    );
  });
});
