import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createTestEnv, type TestEnv } from "../helpers/app.js";

let env: TestEnv;
beforeAll(async () => {
  env = await createTestEnv("smoke");
});
afterAll(async () => env?.close());

describe("submit → process-next → complete", () => {
  it("runs the happy path over HTTP", async () => {
    const client = await env.key("acme", "client");
    const worker = await env.key("acme", "worker");
    const sub = await env.http().post("/v1/jobs").set("authorization", client).send({ queue: "q", kind: "k", payload: { a: 1 } });
    expect(sub.status).toBe(201);
    expect(sub.headers.location).toBe(`/v1/jobs/${sub.body.id}`);
    expect(sub.headers.etag).toBe('"1"');
    const pn = await env.http().post("/v1/process-next").set("authorization", worker).send({ queues: ["q"], workerId: "w1" });
    expect(pn.status).toBe(200);
    expect(pn.body.jobs).toHaveLength(1);
    const job = pn.body.jobs[0];
    expect(job.status).toBe("running");
    expect(job.attempts).toBe(1);
    const done = await env.http().post(`/v1/jobs/${job.id}/complete`).set("authorization", worker).send({ leaseToken: job.leaseToken, result: { ok: true } });
    expect(done.status).toBe(200);
    expect(done.body.status).toBe("succeeded");
    const again = await env.http().post(`/v1/jobs/${job.id}/complete`).set("authorization", worker).send({ leaseToken: job.leaseToken, result: { ok: true } });
    expect(again.status).toBe(200);
    expect(again.body.version).toBe(done.body.version);
    const get = await env.http().get(`/v1/jobs/${job.id}`).set("authorization", client);
    expect(get.body.status).toBe("succeeded");
    expect(get.body.payload).toEqual({ a: 1 });
    expect(get.body.result).toEqual({ ok: true });
    // Stored as JSON objects, not as JSON-encoded strings.
    const [types] = await env.c.sql`SELECT jsonb_typeof(payload) AS p, jsonb_typeof(result) AS r FROM jobs WHERE id = ${job.id}`;
    expect(types).toEqual({ p: "object", r: "object" });
    const bad = await env.http().post("/v1/jobs").set("authorization", client).send({ queue: "q", kind: "k", extra: 1 });
    expect(bad.status).toBe(400);
    expect(bad.headers["content-type"]).toMatch(/application\/problem\+json/);
  });
});
