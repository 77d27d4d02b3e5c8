import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { jobDto } from "../../src/services/representation.js";
import { createTestEnv, type TestEnv } from "../helpers/app.js";

let env: TestEnv;
let client: string;
let worker: string;
beforeAll(async () => {
  env = await createTestEnv("jobs_returned_rows");
  await env.app.listen({ port: 0, host: "127.0.0.1" });
  client = await env.key("acme", "client");
  worker = await env.key("acme", "worker");
});
afterAll(async () => env?.close());

/** The representation of the row as stored now. */
const stored = async (id: string) => jobDto((await env.c.repos.jobs.findById(id, null))!);
const submit = async (queue: string, extra: object = {}) => {
  const r = await env.http().post("/v1/jobs").set("authorization", client).send({ queue, kind: "k", payload: { q: queue }, ...extra });
  expect(r.status).toBe(201);
  return r;
};
/** The HTTP body equals the stored row field for field, and the ETag is its version. */
function expectIsStored(res: { body: Record<string, unknown>; headers: Record<string, string> }, row: ReturnType<typeof jobDto>) {
  const { leaseToken: _, ...body } = res.body;
  expect(body).toEqual(row);
  expect(res.headers.etag).toBe(`"${row.version}"`);
}

describe("returned rows are the post-transition state", () => {
  it("submit and GET return the stored row", async () => {
    const s = await submit("rr0");
    expectIsStored(s, await stored(s.body.id));
    expectIsStored(await env.http().get(`/v1/jobs/${s.body.id}`).set("authorization", client), await stored(s.body.id));
  });

  it("process-next: running, with updatedAt, version and lease exactly as in the DB", async () => {
    const s = await submit("rr1");
    const pn = await env.http().post("/v1/process-next").set("authorization", worker).send({ queues: ["rr1"], workerId: "w1" });
    const [j] = pn.body.jobs;
    expect(j.status).toBe("running");
    const row = await stored(s.body.id);
    const { leaseToken, ...rest } = j;
    expect(rest).toEqual(row);
    expect(row.version).toBe(s.body.version + 1);
    const [{ leaseToken: dbToken }] = await env.c.sql<[{ leaseToken: string }]>`SELECT lease_token FROM jobs WHERE id = ${s.body.id}`;
    expect(leaseToken).toBe(dbToken);
  });

  it("claim by id, heartbeat, complete: each body is the row its statement wrote", async () => {
    const s = await submit("rr2");
    const claim = await env.http().post(`/v1/jobs/${s.body.id}/claim`).set("authorization", worker).set("if-match", `"${s.body.version}"`).send({ workerId: "w2" });
    expect(claim.status).toBe(200);
    expect(claim.body.status).toBe("running");
    expectIsStored(claim, await stored(s.body.id));

    const hb = await env.http().post(`/v1/jobs/${s.body.id}/heartbeat`).set("authorization", worker).send({ leaseToken: claim.body.leaseToken, leaseSeconds: 120 });
    expect(hb.status).toBe(200);
    const afterHb = await stored(s.body.id);
    expect(hb.body).toEqual({ leaseExpiresAt: afterHb.leaseExpiresAt, cancelRequested: false });
    expect(afterHb.version).toBe(claim.body.version + 1);

    const done = await env.http().post(`/v1/jobs/${s.body.id}/complete`).set("authorization", worker).send({ leaseToken: claim.body.leaseToken, result: { r: 1 } });
    expect(done.body.status).toBe("succeeded");
    expectIsStored(done, await stored(s.body.id));
    expect(done.body.version).toBe(afterHb.version + 1);
  });

  it("fail (retry and final) returns the row it wrote", async () => {
    const s = await submit("rr3", { maxAttempts: 2 });
    let [j] = (await env.http().post("/v1/process-next").set("authorization", worker).send({ queues: ["rr3"], workerId: "w" })).body.jobs;
    const retry = await env.http().post(`/v1/jobs/${s.body.id}/fail`).set("authorization", worker).send({ leaseToken: j.leaseToken, error: { message: "a" } });
    expect(retry.body.status).toBe("queued");
    expectIsStored(retry, await stored(s.body.id));
    await env.c.sql`UPDATE jobs SET run_at = now() - interval '1 second' WHERE id = ${s.body.id}`;
    [j] = (await env.http().post("/v1/process-next").set("authorization", worker).send({ queues: ["rr3"], workerId: "w" })).body.jobs;
    const final = await env.http().post(`/v1/jobs/${s.body.id}/fail`).set("authorization", worker).send({ leaseToken: j.leaseToken, error: { message: "b" } });
    expect(final.body.status).toBe("failed");
    expectIsStored(final, await stored(s.body.id));
  });

  it("cancel of a queued job returns cancelled; of a running one, running + cancelRequested, each as stored", async () => {
    const q = await submit("rr4");
    const c1 = await env.http().post(`/v1/jobs/${q.body.id}/cancel`).set("authorization", client);
    expect(c1.body.status).toBe("cancelled");
    expectIsStored(c1, await stored(q.body.id));

    const r = await submit("rr4");
    await env.http().post("/v1/process-next").set("authorization", worker).send({ queues: ["rr4"], workerId: "w" });
    const c2 = await env.http().post(`/v1/jobs/${r.body.id}/cancel`).set("authorization", client);
    expect(c2.body).toMatchObject({ status: "running", cancelRequested: true });
    expectIsStored(c2, await stored(r.body.id));
  });

  it("a repeated cancel of a running job changes nothing: same version, same updatedAt", async () => {
    const r = await submit("rr6");
    await env.http().post("/v1/process-next").set("authorization", worker).send({ queues: ["rr6"], workerId: "w" });
    const first = await env.http().post(`/v1/jobs/${r.body.id}/cancel`).set("authorization", client);
    expect(first.body).toMatchObject({ status: "running", cancelRequested: true });
    const again = await env.http().post(`/v1/jobs/${r.body.id}/cancel`).set("authorization", client);
    expect(again.status).toBe(200);
    expect(again.body).toEqual(first.body);
    expectIsStored(again, await stored(r.body.id));
  });

  it("cancel racing complete, 100 trials: each 200 body is a state the job really passed through, in version order", async () => {
    let cancelFirst = 0;
    for (let t = 0; t < 100; t++) {
      const s = await submit("rr5");
      const [j] = (await env.http().post("/v1/process-next").set("authorization", worker).send({ queues: ["rr5"], workerId: "w" })).body.jobs;
      const [c, d] = await Promise.all([
        env.http().post(`/v1/jobs/${s.body.id}/cancel`).set("authorization", client),
        env.http().post(`/v1/jobs/${s.body.id}/complete`).set("authorization", worker).send({ leaseToken: j.leaseToken }),
      ]);
      expect(d.status).toBe(200);
      expect(d.body.status).toBe("succeeded");
      const final = await stored(s.body.id);
      expectIsStored(d, final);
      if (c.status === 200) {
        // The cancel request landed first: its body is the running row it wrote, one version before the complete.
        cancelFirst++;
        expect(c.body).toMatchObject({ status: "running", cancelRequested: true, version: j.version + 1 });
        expect(d.body.cancelRequested).toBe(true);
        expect(d.body.version).toBe(j.version + 2);
      } else {
        expect(c.status).toBe(409);
        expect(c.body.code).toBe("terminal");
        expect(d.body).toMatchObject({ cancelRequested: false, version: j.version + 1 });
      }
    }
    console.log(`cancel racing complete: cancel landed first in ${cancelFirst}/100`);
  });
});
