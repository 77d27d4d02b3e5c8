import { readFileSync } from "node:fs";
import { parse } from "yaml";
import { beforeAll, describe, expect, it } from "vitest";
import { renderOpenApi } from "../../src/http/openapi.js";
import { useTestEnv } from "../helpers/app.js";

interface Operation {
  responses: Record<string, { description?: string; headers?: Record<string, unknown>; content?: Record<string, { schema?: { $ref?: string } }> }>;
  security?: unknown[];
}
type Doc = { paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, unknown> } };

const committed = readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8");
let rendered: string;
const setup = useTestEnv("openapi");
beforeAll(async () => {
  rendered = await renderOpenApi();
});

const operations = (doc: Doc) =>
  Object.entries(doc.paths).flatMap(([path, methods]) => Object.entries(methods).map(([method, op]) => ({ path, method, op })));

/** The failures DESIGN.md's contract table promises per operation (400/401/403 come with every authenticated one). */
const CONTRACT: Record<string, number[]> = {
  "post /v1/jobs": [413, 422],
  "get /v1/jobs/{id}": [404],
  "get /v1/jobs": [],
  "post /v1/jobs/{id}/cancel": [404, 409, 412],
  "post /v1/process-next": [],
  "post /v1/jobs/{id}/claim": [404, 409, 412],
  "post /v1/jobs/{id}/heartbeat": [404, 409],
  "post /v1/jobs/{id}/complete": [404, 409],
  "post /v1/jobs/{id}/fail": [404, 409],
  "post /v1/batches": [413],
  "post /v1/batches/{id}/jobs": [404, 409],
  "post /v1/batches/{id}/seal": [404, 409],
  "get /v1/batches/{id}": [404],
  "post /v1/batches/{id}/cancel": [404, 409],
  "post /v1/batches/{id}/retry": [404, 409],
  "get /v1/queues": [],
  "post /v1/api-keys": [],
  "get /v1/api-keys": [],
  "delete /v1/api-keys/{id}": [404],
  "get /v1/tenants/{tenant}/webhook-secret": [404],
  "post /v1/tenants/{tenant}/webhook-secret/rotate": [404],
};
/** Unauthenticated operational endpoints: no problem responses to document. */
const OPS = new Set(["/healthz", "/readyz", "/metrics"]);

describe("openapi.yaml", () => {
  it("is exactly what the server renders (regenerate with `npx tsx scripts/openapi.ts`)", () => {
    expect(committed).toBe(rendered);
  });

  it("is what a running server serves at /openapi.json", async () => {
    const res = await setup.env.app.inject({ method: "GET", url: "/openapi.json" });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual(parse(committed));
  });

  it("documents every contract operation with its failure codes", () => {
    const doc = parse(rendered) as Doc;
    for (const [key, codes] of Object.entries(CONTRACT)) {
      const [method, path] = key.split(" ") as [string, string];
      const op = doc.paths[path]?.[method];
      expect(op, `${key} is missing from the document`).toBeDefined();
      for (const code of [400, 401, 403, ...codes]) expect(Object.keys(op!.responses), `${key} lacks ${code}`).toContain(String(code));
    }
  });

  it("every operation under /v1 documents 400 and 401", () => {
    const doc = parse(rendered) as Doc;
    const v1 = operations(doc).filter(({ path }) => path.startsWith("/v1/"));
    expect(v1.length).toBeGreaterThanOrEqual(Object.keys(CONTRACT).length);
    for (const { path, method, op } of v1)
      for (const code of ["400", "401"]) expect(Object.keys(op.responses), `${method} ${path} lacks ${code}`).toContain(code);
  });

  it("every error response of every operation is the Problem schema", () => {
    const doc = parse(rendered) as Doc;
    expect(doc.components.schemas.Problem).toBeDefined();
    let checked = 0;
    for (const { path, method, op } of operations(doc)) {
      if (OPS.has(path)) continue;
      const errorCodes = Object.keys(op.responses).filter((c) => Number(c) >= 400);
      expect(errorCodes.length, `${method} ${path} documents no errors`).toBeGreaterThan(0);
      for (const code of errorCodes) {
        const content = op.responses[code]!.content ?? {};
        const schemas = Object.values(content).map((m) => m.schema?.$ref);
        expect(schemas.length, `${method} ${path} ${code}`).toBeGreaterThan(0);
        for (const s of schemas) expect(s, `${method} ${path} ${code}`).toBe("#/components/schemas/Problem");
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(50);
  });

  it("every response says what it means (no generator default)", () => {
    const doc = parse(rendered) as Doc;
    for (const { path, method, op } of operations(doc))
      for (const [code, res] of Object.entries(op.responses))
        expect(res.description, `${method} ${path} ${code}`).not.toMatch(/^(Default Response)?$/);
  });

  it("declares exactly the ETag, Location and Retry-After headers the server sends", async () => {
    const doc = parse(rendered) as Doc;
    const [client, worker] = [await setup.env.key("acme", "client"), await setup.env.key("acme", "worker")];
    const checked: string[] = [];
    /** One real call; the headers it got back must be the ones documented for its operation and status. */
    const call = async (method: "GET" | "POST", template: string, url: string, auth: string, body?: unknown, headers: Record<string, string> = {}) => {
      const res = await setup.env.app.inject({ method, url, headers: { authorization: auth, ...headers }, ...(body === undefined ? {} : { payload: body as object }) });
      const op = doc.paths[template]?.[method.toLowerCase()];
      expect(op, `${method} ${template}`).toBeDefined();
      const declared = Object.keys(op!.responses[String(res.statusCode)]?.headers ?? {}).map((h) => h.toLowerCase()).sort();
      const sent = ["etag", "location", "retry-after"].filter((h) => res.headers[h] !== undefined);
      expect(sent, `${method} ${template} ${res.statusCode}`).toEqual(declared);
      checked.push(`${method} ${template} ${res.statusCode}`);
      return res.json() as { id: string; leaseToken: string; version: number };
    };
    const idem = { "idempotency-key": "openapi-headers" };
    const a = await call("POST", "/v1/jobs", "/v1/jobs", client, { queue: "h", kind: "k" }, idem);
    await call("POST", "/v1/jobs", "/v1/jobs", client, { queue: "h", kind: "k" }, idem);
    await call("GET", "/v1/jobs/{id}", `/v1/jobs/${a.id}`, client);
    const claimed = await call("POST", "/v1/jobs/{id}/claim", `/v1/jobs/${a.id}/claim`, worker, { workerId: "w" });
    await call("POST", "/v1/jobs/{id}/heartbeat", `/v1/jobs/${a.id}/heartbeat`, worker, { leaseToken: claimed.leaseToken });
    await call("POST", "/v1/jobs/{id}/complete", `/v1/jobs/${a.id}/complete`, worker, { leaseToken: claimed.leaseToken });
    await call("POST", "/v1/jobs/{id}/complete", `/v1/jobs/${a.id}/complete`, worker, { leaseToken: claimed.leaseToken });
    const b = await call("POST", "/v1/jobs", "/v1/jobs", client, { queue: "h", kind: "k", maxAttempts: 1 });
    const [leased] = (await setup.env.app.inject({ method: "POST", url: "/v1/process-next", headers: { authorization: worker }, payload: { queues: ["h"], workerId: "w" } })).json().jobs as { leaseToken: string }[];
    await call("POST", "/v1/jobs/{id}/fail", `/v1/jobs/${b.id}/fail`, worker, { leaseToken: leased!.leaseToken, error: { message: "x" }, retryable: false });
    const c = await call("POST", "/v1/jobs", "/v1/jobs", client, { queue: "h", kind: "k" });
    await call("POST", "/v1/jobs/{id}/cancel", `/v1/jobs/${c.id}/cancel`, client, undefined, { "if-match": '"999"' });
    await call("POST", "/v1/jobs/{id}/cancel", `/v1/jobs/${c.id}/cancel`, client);
    await call("GET", "/v1/jobs", "/v1/jobs?queue=h", client);
    const batch = await call("POST", "/v1/batches", "/v1/batches", client, { jobs: [{ queue: "hb", kind: "k" }], seal: false });
    await call("POST", "/v1/batches/{id}/jobs", `/v1/batches/${batch.id}/jobs`, client, { jobs: [{ queue: "hb", kind: "k" }] });
    await call("POST", "/v1/batches/{id}/seal", `/v1/batches/${batch.id}/seal`, client);
    await call("GET", "/v1/batches/{id}", `/v1/batches/${batch.id}`, client);
    await call("POST", "/v1/batches/{id}/cancel", `/v1/batches/${batch.id}/cancel`, client);
    await call("POST", "/v1/batches/{id}/retry", `/v1/batches/${batch.id}/retry`, client);
    await call("GET", "/v1/jobs/{id}", "/v1/jobs/00000000-0000-4000-8000-000000000000", client);
    expect(checked).toHaveLength(20);
  });
});
