import supertest from "supertest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { testConfig } from "../../src/config.js";
import { type Container, createContainer } from "../../src/container.js";
import { freePort } from "../../src/db/embedded.js";
import { buildApp } from "../../src/http/app.js";
import type { Api } from "../../src/http/types.js";

// The API with its database unreachable: a port on 127.0.0.1 where nothing listens, so every
// connection is refused, as while PostgreSQL is down. Every call that needs the database must
// say "changed nothing, send it again" (503 problem+json, Retry-After), never a 500, whichever
// data layer met the refusal (postgres.js directly, or drizzle, which wraps its errors).
let c: Container;
let app: Api;
beforeAll(async () => {
  const port = await freePort();
  c = createContainer(testConfig({ JOBLINE_DB_POOL_MAX: 2 }), `postgres://jobline@127.0.0.1:${port}/jobline`);
  app = await buildApp(c);
  await app.ready();
});
afterAll(async () => {
  await app?.close();
  await c?.close();
});

const key = "Bearer jl_00000000000000000000000000000000";
const calls: Array<[string, string, object?]> = [
  ["post", "/v1/jobs", { queue: "q", kind: "k", payload: {} }],
  ["get", "/v1/jobs"],
  ["get", "/v1/jobs/0190b5c2-0000-7000-8000-000000000000"],
  ["post", "/v1/process-next", { queues: ["q"], workerId: "w" }],
  ["get", "/v1/queues"],
  ["get", "/v1/api-keys"],
  ["post", "/v1/batches", { jobs: [{ queue: "q", kind: "k", payload: {} }] }],
];

describe("database unreachable", () => {
  it.each(calls)("%s %s is 503 problem+json with Retry-After", async (method, path, body) => {
    const req = (supertest(app.server) as unknown as Record<string, (p: string) => supertest.Test>)[method]!(path).set("authorization", key);
    const r = await (body ? req.send(body) : req);
    expect({ status: r.status, type: r.headers["content-type"], retryAfter: r.headers["retry-after"], code: r.body.code }).toEqual({
      status: 503,
      type: "application/problem+json; charset=utf-8",
      retryAfter: "1",
      code: "unavailable",
    });
  });

  it("readiness says so too", async () => {
    const r = await supertest(app.server).get("/readyz");
    expect(r.status).toBe(503);
  });
});
