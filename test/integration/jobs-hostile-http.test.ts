import net from "node:net";
import { describe, expect, it } from "vitest";
import { type TestEnv, useTestEnv } from "../helpers/app.js";

/**
 * Hostile input that never reaches a route handler: bytes Node's HTTP parser
 * refuses, URLs that do not decode, dates outside PostgreSQL's range. Each
 * answer is a 4xx problem+json, over a real socket, and nothing is written.
 */
const setup = useTestEnv("jobs_hostile_http", {}, { listen: true });

/** Sends raw bytes and returns status, headers and body of the one response. */
function raw(text: string): Promise<{ status: number; headers: string; body: string }> {
  return new Promise((resolve, reject) => {
    const s = net.connect(setup.port, "127.0.0.1", () => s.write(text));
    let out = "";
    s.setEncoding("utf8");
    s.on("data", (d: string) => {
      out += d;
    });
    s.on("error", reject);
    s.on("close", () => {
      const [head = "", body = ""] = out.split("\r\n\r\n");
      resolve({ status: Number(head.split(" ")[1]), headers: head, body });
    });
    s.setTimeout(10_000, () => s.destroy(new Error("no response")));
  });
}

const rows = async () =>
  (await setup.env.c.sql<[{ jobs: number; batches: number }]>`SELECT (SELECT count(*) FROM jobs)::int AS jobs, (SELECT count(*) FROM batches)::int AS batches`)[0];

function expectProblem(r: { status: number; headers: string; body: string }, status: number) {
  expect(r.status, r.headers + r.body).toBe(status);
  expect(r.headers).toMatch(/content-type: application\/problem\+json/i);
  const p = JSON.parse(r.body) as { code: string; status: number };
  expect(p.status).toBe(status);
  expect(typeof p.code).toBe("string");
}

describe("requests the HTTP parser refuses are problem+json too", () => {
  it("control bytes in a header, a garbage request line, conflicting lengths: 400; oversized headers: 431", async () => {
    const before = await rows();
    const auth = `Authorization: ${setup.client}\r\n`;
    expectProblem(await raw(`GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Bad: a\u0001b\r\n\r\n`), 400);
    expectProblem(await raw("GARBAGE\r\n\r\n"), 400);
    expectProblem(await raw(`POST /v1/jobs HTTP/1.1\r\nHost: x\r\n${auth}Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n{}`), 400);
    expectProblem(await raw(`GET /v1/jobs HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(20_000)}\r\n\r\n`), 431);
    expectProblem(await raw(`GET /v1/jobs/%E0%A4%A HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`), 400);
    expectProblem(await raw(`GET /v1/jobs/%00 HTTP/1.1\r\nHost: x\r\n${auth}Connection: close\r\n\r\n`), 400);
    expect(await rows()).toEqual(before);
  });
});

describe("values outside what PostgreSQL stores are 400, never 500", () => {
  it("runAt outside 1970..9999 (in UTC) is refused on submit and in batches", async () => {
    const before = await rows();
    for (const runAt of ["0000-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "1970-01-01T00:30:00+01:00", "9999-12-31T23:30:00-01:00"]) {
      const s = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).send({ queue: "q", kind: "k", runAt });
      expect(s.status, `${runAt}: ${JSON.stringify(s.body)}`).toBe(400);
      expect(s.headers["content-type"]).toMatch(/application\/problem\+json/);
      const b = await setup.env.http().post("/v1/batches").set("authorization", setup.client).send({ jobs: [{ queue: "q", kind: "k", runAt }] });
      expect(b.status, `${runAt}: ${JSON.stringify(b.body)}`).toBe(400);
    }
    expect(await rows()).toEqual(before);
    for (const runAt of ["1970-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z"]) {
      const s = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).send({ queue: "q", kind: "k", runAt });
      expect(s.status, runAt).toBe(201);
      expect(s.body.runAt).toBe(new Date(runAt).toISOString());
    }
  });

  it("a number JSON cannot carry (1e400) is 400, not silently stored as null", async () => {
    const before = await rows();
    for (const text of ['{"queue":"q","kind":"k","payload":{"n":1e400}}', '{"queue":"q","kind":"k","payload":[-1e999]}']) {
      const r = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).set("content-type", "application/json").send(text);
      expect(r.status, text).toBe(400);
      expect(r.body.code).toBe("invalid_request");
    }
    expect(await rows()).toEqual(before);
  });

  it("an If-Match with unbalanced quotes matches no version (412), it is not read as the number inside", async () => {
    const s = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).send({ queue: "im", kind: "k" });
    for (const h of ['"1', '1"', 'W/"1']) {
      const r = await setup.env.http().post(`/v1/jobs/${s.body.id}/cancel`).set("authorization", setup.client).set("if-match", h);
      expect(r.status, h).toBe(412);
      expect(r.body.code).toBe("version_mismatch");
    }
    const ok = await setup.env.http().post(`/v1/jobs/${s.body.id}/cancel`).set("authorization", setup.client).set("if-match", '"1"');
    expect(ok.status).toBe(200);
    expect(ok.body.status).toBe("cancelled");
  });

  it("a stale If-Match on claim or cancel is 412 and changes nothing", async () => {
    const worker = await setup.env.key("acme", "worker");
    const s = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).send({ queue: "stale", kind: "k" });
    const before = (await setup.env.c.sql`SELECT * FROM jobs WHERE id = ${s.body.id}`)[0];
    const claim = await setup.env.http().post(`/v1/jobs/${s.body.id}/claim`).set("authorization", worker).set("if-match", '"2"').send({ workerId: "w" });
    expect(claim.status).toBe(412);
    expect(claim.body.code).toBe("version_mismatch");
    const cancel = await setup.env.http().post(`/v1/jobs/${s.body.id}/cancel`).set("authorization", setup.client).set("if-match", 'W/"7"');
    expect(cancel.status).toBe(412);
    expect((await setup.env.c.sql`SELECT * FROM jobs WHERE id = ${s.body.id}`)[0]).toEqual(before);
    const ok = await setup.env.http().post(`/v1/jobs/${s.body.id}/claim`).set("authorization", worker).set("if-match", '"1"').send({ workerId: "w" });
    expect(ok.status).toBe(200);
    expect(ok.headers.etag).toBe('"2"');
  });

  it("a payload of exactly 256 KiB is accepted, one byte more is 413", async () => {
    // JSON.stringify of a string adds two quote bytes.
    const exact = "a".repeat(256 * 1024 - 2);
    const ok = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).send({ queue: "size", kind: "k", payload: exact });
    expect(ok.status).toBe(201);
    const before = await rows();
    const over = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).send({ queue: "size", kind: "k", payload: `${exact}a` });
    expect(over.status).toBe(413);
    expect(over.body.code).toBe("payload_too_large");
    // Multi-byte characters count as bytes, not characters.
    const wide = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).send({ queue: "size", kind: "k", payload: "é".repeat(128 * 1024) });
    expect(wide.status).toBe(413);
    expect(await rows()).toEqual(before);
  });

  it("cancel takes no body, an empty JSON body or {}; anything else is 400", async () => {
    for (const send of [
      (r: ReturnType<ReturnType<TestEnv["http"]>["post"]>) => r,
      (r: ReturnType<ReturnType<TestEnv["http"]>["post"]>) => r.set("content-type", "application/json").send(""),
      (r: ReturnType<ReturnType<TestEnv["http"]>["post"]>) => r.send({}),
    ]) {
      const s = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).send({ queue: "cb", kind: "k" });
      const c = await send(setup.env.http().post(`/v1/jobs/${s.body.id}/cancel`).set("authorization", setup.client));
      expect(c.status, JSON.stringify(c.body)).toBe(200);
    }
    const s = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).send({ queue: "cb", kind: "k" });
    const bad = await setup.env.http().post(`/v1/jobs/${s.body.id}/cancel`).set("authorization", setup.client).send({ force: true });
    expect(bad.status).toBe(400);
  });
});
