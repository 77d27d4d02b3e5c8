import supertest from "supertest";
import { describe, expect, it } from "vitest";
import { testConfig } from "../../src/config.js";
import { createContainer } from "../../src/container.js";
import { freePort } from "../../src/db/embedded.js";
import { buildApp } from "../../src/http/app.js";
import { useTestEnv } from "../helpers/app.js";

// The edge cases of an outside audit (issue 23, defect 4): each is a 4xx or a refusal,
// never a silent acceptance, a 5xx or an undocumented status.
const setup = useTestEnv("edge_cases");

const post = (path: string, body: unknown, auth = setup.client) => setup.env.http().post(path).set("authorization", auth).send(body as object);
const jobCount = async () => (await setup.env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs`)[0].n;
const nest = (levels: number): unknown => {
  let v: unknown = {};
  for (let i = 1; i < levels; i++) v = { a: v };
  return v;
};

describe("limits agree", () => {
  it("a tenant name of 128 characters works on the webhook-secret routes; 129 is a 400, never a 414", async () => {
    const long = "t".repeat(128);
    expect((await post("/v1/api-keys", { tenant: long, roles: ["client"] }, setup.env.admin)).status).toBe(201);
    const got = await setup.env.http().get(`/v1/tenants/${long}/webhook-secret`).set("authorization", setup.env.admin);
    expect(got.status, JSON.stringify(got.body)).toBe(200);
    expect(got.body.secret).toMatch(/^whsec_/);
    const rotated = await setup.env.http().post(`/v1/tenants/${long}/webhook-secret/rotate`).set("authorization", setup.env.admin);
    expect(rotated.status).toBe(200);
    const tooLong = await setup.env.http().get(`/v1/tenants/${long}x/webhook-secret`).set("authorization", setup.env.admin);
    expect(tooLong.status).toBe(400);
    expect((await post("/v1/api-keys", { tenant: `${long}x`, roles: ["client"] }, setup.env.admin)).status).toBe(400);
  });

  it("payload nesting: 64 levels are accepted, 65 refused (400)", async () => {
    const ok = await post("/v1/jobs", { queue: "nest", kind: "k", payload: nest(64) });
    expect(ok.status, JSON.stringify(ok.body)).toBe(201);
    const deep = await post("/v1/jobs", { queue: "nest", kind: "k", payload: nest(65) });
    expect(deep.status).toBe(400);
    expect(deep.body.detail).toMatch(/nested deeper than 64 levels/);
    expect(await post("/v1/jobs", { queue: "nest", kind: "k", payload: [nest(64)] }).then((r) => r.status)).toBe(400);
  });

  it("a result over 256 KiB is 413 on complete, on many completes and in a poll; the job stays running", async () => {
    const big = { s: "x".repeat(256 * 1024) };
    const fits = { s: "x".repeat(200 * 1024) };
    for (let i = 0; i < 4; i++) expect((await post("/v1/jobs", { queue: "results", kind: "k" })).status).toBe(201);
    const claim = await post("/v1/process-next", { queues: ["results"], workerId: "w", max: 4 }, setup.worker);
    const [a, b, c, d] = claim.body.jobs as Array<{ id: string; leaseToken: string }>;
    const one = await post(`/v1/jobs/${a!.id}/complete`, { leaseToken: a!.leaseToken, result: big }, setup.worker);
    expect(one.status).toBe(413);
    expect(one.body.code).toBe("payload_too_large");
    const many = await post("/v1/jobs/complete", { items: [{ id: b!.id, leaseToken: b!.leaseToken, result: big }] }, setup.worker);
    expect(many.body.items[0]).toMatchObject({ id: b!.id, status: 413 });
    const poll = await post("/v1/process-next", { queues: ["results"], workerId: "w", complete: [{ id: c!.id, leaseToken: c!.leaseToken, result: big }] }, setup.worker);
    expect(poll.body.completed[0]).toMatchObject({ id: c!.id, status: 413 });
    const rows = await setup.env.c.sql<{ status: string }[]>`SELECT status FROM jobs WHERE id IN (${a!.id}, ${b!.id}, ${c!.id})`;
    expect(rows.map((r) => r.status)).toEqual(["running", "running", "running"]);
    expect((await post(`/v1/jobs/${d!.id}/complete`, { leaseToken: d!.leaseToken, result: fits }, setup.worker)).status).toBe(200);
  });
});

describe("input that must not be stored as something else", () => {
  it("invalid UTF-8 in a JSON body is 400, not stored as U+FFFD", async () => {
    const before = await jobCount();
    const body = Buffer.concat([Buffer.from('{"queue":"utf","kind":"k","payload":{"s":"'), Buffer.from([0xff, 0xfe]), Buffer.from('"}}')]);
    const r = await setup.env.app.inject({ method: "POST", url: "/v1/jobs", headers: { authorization: setup.client, "content-type": "application/json" }, payload: body });
    expect(r.statusCode).toBe(400);
    expect(r.json().detail).toMatch(/UTF-8/);
    expect(await jobCount()).toBe(before);
    const fine = await post("/v1/jobs", { queue: "utf", kind: "k", payload: { s: "é😀" } });
    expect(fine.body.payload).toEqual({ s: "é😀" });
  });

  it("a list cursor dated year 0000 is a malformed cursor (400 invalid_request), not a database error", async () => {
    for (const createdAt of ["0000-01-01 00:00:00+00", "0000-12-31T23:59:59Z", "1969-12-31 23:59:59+00"]) {
      const cursor = Buffer.from(JSON.stringify([createdAt, "0190b5c2-0000-7000-8000-000000000000"])).toString("base64url");
      for (const path of ["/v1/jobs", "/v1/batches"]) {
        const r = await setup.env.http().get(`${path}?cursor=${cursor}`).set("authorization", setup.client);
        // code `invalid` would be the database refusing it, logged as an error with a stack.
        expect({ path, createdAt, status: r.status, code: r.body.code }).toEqual({ path, createdAt, status: 400, code: "invalid_request" });
      }
    }
  });
});

describe("webhook URLs are judged at submit", () => {
  const refused = [
    "http://127.0.0.1/hook",
    "http://[::1]/hook",
    "http://[::127.0.0.1]/hook",
    "http://[::a9fe:a9fe]/hook",
    "http://[::ffff:10.0.0.1]/hook",
    "http://[fec0::1]/hook",
    "http://[2001::1]/hook",
    "http://10.1.2.3/hook",
    "http://169.254.169.254/latest/meta-data",
    "http://0x7f.1/hook",
    "https://user:pass@example.com/hook",
    "https://user@example.com/hook",
  ];

  it("a literal non-public address or credentials: 400 webhook_url_not_allowed, on jobs and batches, nothing written", async () => {
    const before = await jobCount();
    for (const webhookUrl of refused) {
      const j = await post("/v1/jobs", { queue: "hooks", kind: "k", webhookUrl });
      expect({ webhookUrl, status: j.status, code: j.body.code }).toEqual({ webhookUrl, status: 400, code: "webhook_url_not_allowed" });
      const b = await post("/v1/batches", { jobs: [{ queue: "hooks", kind: "k" }], webhookUrl });
      expect({ webhookUrl, status: b.status, code: b.body.code }).toEqual({ webhookUrl, status: 400, code: "webhook_url_not_allowed" });
      const inJob = await post("/v1/batches", { jobs: [{ queue: "hooks", kind: "k" }, { queue: "hooks", kind: "k", webhookUrl }] });
      expect(inJob.body.detail).toMatch(/^jobs\[1\]\.webhookUrl/);
    }
    const open = await post("/v1/batches", { jobs: [], seal: false });
    expect((await post(`/v1/batches/${open.body.id}/jobs`, { jobs: [{ queue: "hooks", kind: "k", webhookUrl: refused[0] }] })).status).toBe(400);
    expect(await jobCount()).toBe(before);
    // Public hosts and names pass (a name is checked where it is resolved, at delivery).
    for (const webhookUrl of ["https://example.com/hook", "http://localhost:9/hook", "https://[2606:4700::1111]/hook", "http://8.8.8.8/"])
      expect((await post("/v1/jobs", { queue: "hooks", kind: "k", webhookUrl })).status, webhookUrl).toBe(201);
  });

  it("JOBLINE_WEBHOOK_ALLOW_HOSTS exempts a host, not credentials", async () => {
    const app = await buildApp({ ...setup.env.c, config: { ...setup.env.c.config, JOBLINE_WEBHOOK_ALLOW_HOSTS: "127.0.0.1, ::1" } });
    await app.ready();
    try {
      const send = (webhookUrl: string) => supertest(app.server).post("/v1/jobs").set("authorization", setup.client).send({ queue: "hooks", kind: "k", webhookUrl });
      expect((await send("http://127.0.0.1:8080/hook")).status).toBe(201);
      expect((await send("http://[::1]:8080/hook")).status).toBe(201);
      expect((await send("http://10.0.0.1/hook")).status).toBe(400);
      expect((await send("http://u:p@127.0.0.1/hook")).status).toBe(400);
    } finally {
      await app.close();
    }
  });
});

describe("HTTP semantics", () => {
  it("an unsupported method on a known path is 405 with Allow; an unknown path stays 404", async () => {
    const id = "0190b5c2-0000-7000-8000-000000000000";
    // DELETE /v1/jobs/{id} is a route of its own (operator control), so PUT stands in.
    const del = await setup.env.http().put(`/v1/jobs/${id}`).set("authorization", setup.client);
    expect(del.status).toBe(405);
    expect(del.headers["content-type"]).toMatch(/application\/problem\+json/);
    expect(del.body.code).toBe("method_not_allowed");
    expect(del.headers.allow?.split(", ").sort()).toEqual(["DELETE", "GET", "HEAD"]);
    const put = await setup.env.http().put("/v1/process-next").set("authorization", setup.client);
    expect([put.status, put.headers.allow]).toEqual([405, "POST"]);
    const patch = await setup.env.http().patch(`/v1/api-keys/${id}`).set("authorization", setup.client);
    expect([patch.status, patch.headers.allow]).toEqual([405, "DELETE"]);
    expect((await setup.env.http().get("/v1/nothing-here")).status).toBe(404);
    expect((await setup.env.http().delete("/v1/jobs/a/b/c")).status).toBe(404);
  });

  it("/readyz says ready or not, and nothing about where the database is", async () => {
    const ready = await setup.env.http().get("/readyz");
    expect([ready.status, ready.body]).toEqual([200, { status: "ready" }]);
    const port = await freePort();
    const down = createContainer(testConfig({ JOBLINE_DB_POOL_MAX: 1 }), `postgres://jobline@127.0.0.1:${port}/jobline`);
    const app = await buildApp(down);
    await app.ready();
    try {
      const r = await supertest(app.server).get("/readyz");
      expect([r.status, r.body]).toEqual([503, { status: "not_ready" }]);
      expect(r.text).not.toContain(String(port));
    } finally {
      await app.close();
      await down.close();
    }
  });
});
