import { describe, expect, it } from "vitest";
import { reapOnce } from "../../src/worker/reaper.js";
import { useTestEnv } from "../helpers/app.js";
import { parseMetrics } from "../helpers/metrics.js";

const setup = useTestEnv("metrics");

describe("GET /metrics after a workload", () => {
  it("counts exactly what happened", async () => {
    const client = await setup.env.key("m", "client");
    const worker = await setup.env.key("m", "worker");
    const post = (path: string, body: unknown, key = worker) =>
      setup.env.http().post(path).set("authorization", key).send(body as object);

    for (let i = 0; i < 10; i++) expect((await post("/v1/jobs", { queue: "mq", kind: "k" }, client)).status).toBe(201);
    // 6 claimed one request at a time, 2 in one request, 1 empty poll on another queue.
    const claimed = [];
    for (let i = 0; i < 6; i++) claimed.push(...(await post("/v1/process-next", { queues: ["mq"], workerId: "w" })).body.jobs);
    claimed.push(...(await post("/v1/process-next", { queues: ["mq"], workerId: "w", max: 2 })).body.jobs);
    expect(claimed).toHaveLength(8);
    expect((await post("/v1/process-next", { queues: ["empty"], workerId: "w" })).body.jobs).toHaveLength(0);

    // 3 complete, 2 fail for good, 1 retried, 1 lost race (wrong token), 1 left to the reaper.
    for (const j of claimed.slice(0, 3)) expect((await post(`/v1/jobs/${j.id}/complete`, { leaseToken: j.leaseToken })).status).toBe(200);
    for (const j of claimed.slice(3, 5))
      expect((await post(`/v1/jobs/${j.id}/fail`, { leaseToken: j.leaseToken, error: { message: "x" }, retryable: false })).status).toBe(200);
    expect((await post(`/v1/jobs/${claimed[5].id}/fail`, { leaseToken: claimed[5].leaseToken, error: { message: "again" } })).status).toBe(200);
    const wrong = "00000000-0000-4000-8000-000000000000";
    expect((await post(`/v1/jobs/${claimed[6].id}/complete`, { leaseToken: wrong })).status).toBe(409);
    await setup.env.c.sql`UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = ${claimed[7].id}`;
    expect(await reapOnce(setup.env.c)).toBe(1);
    // 1 of the 2 still queued is cancelled.
    const queued = (await setup.env.http().get("/v1/jobs?status=queued&queue=mq").set("authorization", client)).body.items;
    expect((await post(`/v1/jobs/${queued[0].id}/cancel`, {}, client)).status).toBe(200);

    const m = parseMetrics((await setup.env.http().get("/metrics")).text);
    expect(m.get('jobline_claims_total{outcome="claimed"}')).toBe(8);
    expect(m.get('jobline_claims_total{outcome="empty"}')).toBe(1);
    expect(m.get('jobline_transitions_total{from="queued",to="running"}')).toBe(8);
    expect(m.get('jobline_transitions_total{from="running",to="succeeded"}')).toBe(3);
    expect(m.get('jobline_transitions_total{from="running",to="failed"}')).toBe(2);
    // the retry and the reaped lease
    expect(m.get('jobline_transitions_total{from="running",to="queued"}')).toBe(2);
    expect(m.get('jobline_transitions_total{from="queued",to="cancelled"}')).toBe(1);
    expect(m.get('jobline_races_lost_total{operation="complete"}')).toBe(1);
    expect(m.get('jobline_reaper_recoveries_total{to="queued"}')).toBe(1);
    expect(m.get('jobline_leases_expired_total{tenant="m",queue="mq"}')).toBe(1);
    // depth: 3 succeeded, 2 failed, 1 cancelled, 1 running (wrong-token job), 3 queued (1 never claimed + retry + reaped)
    expect(m.get('jobline_queue_depth{tenant="m",queue="mq",status="succeeded"}')).toBe(3);
    expect(m.get('jobline_queue_depth{tenant="m",queue="mq",status="failed"}')).toBe(2);
    expect(m.get('jobline_queue_depth{tenant="m",queue="mq",status="cancelled"}')).toBe(1);
    expect(m.get('jobline_queue_depth{tenant="m",queue="mq",status="running"}')).toBe(1);
    expect(m.get('jobline_queue_depth{tenant="m",queue="mq",status="queued"}')).toBe(3);
    expect([...m.keys()].some((k) => k.startsWith("jobline_http_request_duration_seconds_bucket"))).toBe(true);
    expect(m.has('jobline_oldest_queued_age_seconds{tenant="m",queue="mq"}')).toBe(true);
  });
});
