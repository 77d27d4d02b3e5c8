import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import { useTestEnv } from "../helpers/app.js";

/**
 * Hostile input at every endpoint: every answer is a 4xx problem+json with a
 * `code`, never a 5xx, and nothing is written. Every generated request is
 * invalid by construction (each mutation alone makes it so), so "no row
 * changed" is a real assertion, not luck.
 */

const setup = useTestEnv("fuzz");
let auth: string;
const fx = { queued: "", running: "", leaseToken: "", batch: "" };

beforeAll(async () => {
  auth = setup.env.admin;
  const svc = setup.env.c.services.jobs;
  const q = await svc.submit("acme", { queue: "fz", kind: "k", payload: {} });
  const r = await svc.submit("acme", { queue: "fz-run", kind: "k", payload: {} });
  if (!q.ok || !r.ok) throw new Error("fixture");
  fx.queued = q.value.id;
  const [claimed] = await svc.claimNext({ queues: ["fz-run"], scope: null, workerId: "w", leaseSeconds: 3600, max: 1, waitMs: 0 });
  fx.running = claimed!.id;
  fx.leaseToken = claimed!.leaseToken!;
  const b = await setup.env.http().post("/v1/batches").set("authorization", auth).send({ jobs: [{ queue: "fz-b", kind: "k" }], seal: false });
  expect(b.status).toBe(201);
  fx.batch = b.body.id;
});

/** Everything a write could touch: row counts and version sums. */
async function fingerprint() {
  const [r] = await setup.env.c.sql`
    SELECT (SELECT count(*) FROM jobs)::int AS jobs, (SELECT coalesce(sum(version), 0) FROM jobs)::int AS job_versions,
           (SELECT count(*) FROM batches)::int AS batches, (SELECT coalesce(sum(version), 0) FROM batches)::int AS batch_versions,
           (SELECT count(*) FROM api_keys)::int AS api_keys, (SELECT count(*) FROM webhook_outbox)::int AS outbox,
           (SELECT count(*) FROM tenants)::int AS tenants, (SELECT count(*) FROM job_groups)::int AS groups`;
  return r;
}

type Kind = "name" | "uuid" | "int" | "seconds" | "bool" | "json" | "text" | "url" | "array" | "datetime" | "roles" | "keytenant";
interface Spec {
  name: string;
  method: "GET" | "POST" | "DELETE";
  path: () => string;
  /** A valid body; undefined for body-less routes. */
  body?: () => Record<string, unknown>;
  fields?: Record<string, Kind>;
  ifMatch?: boolean;
  idempotencyKey?: boolean;
}

const J = () => fx.queued;
const R = () => fx.running;
const B = () => fx.batch;
const job = () => ({ queue: "fz", kind: "k", payload: { a: 1 } });
const jobFields: Record<string, Kind> = {
  queue: "name", kind: "name", payload: "json", priority: "int", groupKey: "text", runAt: "datetime", maxAttempts: "int", webhookUrl: "url",
};

const SPECS: Spec[] = [
  { name: "submit", method: "POST", path: () => "/v1/jobs", body: job, fields: { ...jobFields, tenant: "name" }, idempotencyKey: true },
  { name: "get", method: "GET", path: () => `/v1/jobs/${J()}` },
  { name: "cancel", method: "POST", path: () => `/v1/jobs/${J()}/cancel`, body: () => ({}), fields: {}, ifMatch: true },
  {
    name: "process-next", method: "POST", path: () => "/v1/process-next",
    body: () => ({ queues: ["fz"], workerId: "w" }),
    fields: { queues: "array", kinds: "array", workerId: "text", max: "int", leaseSeconds: "int", waitMs: "int" },
  },
  { name: "claim", method: "POST", path: () => `/v1/jobs/${J()}/claim`, body: () => ({ workerId: "w" }), fields: { workerId: "text", leaseSeconds: "int" }, ifMatch: true },
  { name: "heartbeat", method: "POST", path: () => `/v1/jobs/${R()}/heartbeat`, body: () => ({ leaseToken: fx.leaseToken }), fields: { leaseToken: "uuid", leaseSeconds: "int" } },
  { name: "complete", method: "POST", path: () => `/v1/jobs/${R()}/complete`, body: () => ({ leaseToken: fx.leaseToken, result: { ok: 1 } }), fields: { leaseToken: "uuid", result: "json" } },
  {
    name: "fail", method: "POST", path: () => `/v1/jobs/${R()}/fail`,
    body: () => ({ leaseToken: fx.leaseToken, error: { message: "m" } }),
    fields: { leaseToken: "uuid", error: "json", retryable: "bool", retryAfterSeconds: "seconds" },
  },
  {
    name: "complete-many", method: "POST", path: () => "/v1/jobs/complete",
    body: () => ({ items: [{ id: R(), leaseToken: fx.leaseToken }] }),
    fields: { items: "array" },
  },
  { name: "batch-create", method: "POST", path: () => "/v1/batches", body: () => ({ jobs: [job()] }), fields: { jobs: "array", seal: "bool", webhookUrl: "url" } },
  { name: "batch-add", method: "POST", path: () => `/v1/batches/${B()}/jobs`, body: () => ({ jobs: [job()] }), fields: { jobs: "array" } },
  { name: "batch-seal", method: "POST", path: () => `/v1/batches/${B()}/seal`, body: () => ({}), fields: {} },
  { name: "batch-get", method: "GET", path: () => `/v1/batches/${B()}` },
  { name: "batch-cancel", method: "POST", path: () => `/v1/batches/${B()}/cancel`, body: () => ({}), fields: {} },
  { name: "batch-retry", method: "POST", path: () => `/v1/batches/${B()}/retry`, body: () => ({}), fields: {} },
  { name: "api-key-create", method: "POST", path: () => "/v1/api-keys", body: () => ({ tenant: "acme", roles: ["client"] }), fields: { tenant: "keytenant", roles: "roles", name: "text" } },
  { name: "api-key-delete", method: "DELETE", path: () => "/v1/api-keys/00000000-0000-4000-8000-000000000000" },
  { name: "secret-get", method: "GET", path: () => "/v1/tenants/acme/webhook-secret" },
  { name: "secret-rotate", method: "POST", path: () => "/v1/tenants/acme/webhook-secret/rotate" },
  // Body-less reads: hostile only through auth (badAuth) and query strings (badQuery).
  { name: "job-list", method: "GET", path: () => "/v1/jobs" },
  { name: "batch-list", method: "GET", path: () => "/v1/batches" },
  { name: "api-key-list", method: "GET", path: () => "/v1/api-keys" },
  { name: "queues", method: "GET", path: () => "/v1/queues" },
  { name: "throughput", method: "GET", path: () => "/v1/stats/throughput" },
];

// ---- hostile values -------------------------------------------------------

const HUGE = "\u0001HUGE\u0001"; // replaced by a bare 1e400 in the serialised text
const deep = (n: number): unknown => {
  let v: unknown = "x";
  for (let i = 0; i < n; i++) v = i % 2 ? [v] : { d: v };
  return v;
};
const nastyString = fc.oneof(
  fc.constantFrom("\u0000", "a\u0000b", "\ud800", "x\udfffy", "\ud83d", "", " ", "\u202e", "\uffff\ufffe", "../../etc/passwd", "'; DROP TABLE jobs; --"),
  fc.string({ unit: "binary", maxLength: 20 }).map((s) => `${s}\u0000`),
  fc.string({ unit: "binary", maxLength: 20 }).map((s) => `${s}\udc00`),
);
const notAString = fc.oneof(fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.array(fc.integer(), { maxLength: 3 }), fc.constant({}), fc.constant(HUGE));
const badName = fc.oneof(
  nastyString,
  notAString,
  fc.constant("a".repeat(129)),
  fc.string({ minLength: 1, maxLength: 10 }).filter((s) => !/^[A-Za-z0-9_.:-]+$/.test(s)),
);
const badText = fc.oneof(fc.constantFrom("\u0000", "a\u0000", "\ud800", "", "x".repeat(100_000)), notAString);
const badUuid = fc.oneof(
  fc.string({ maxLength: 40 }).filter((s) => !/^[0-9a-f]{8}-[0-9a-f]{4}-[1-8][0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/i.test(s)),
  fc.constantFrom("00000000-0000-0000-0000-00000000000g", "{00000000-0000-4000-8000-000000000000}", "00000000000040008000000000000000"),
  notAString,
);
const badInt = fc.oneof(
  fc.constantFrom(1.5, -1, 0.000001, 1e300, -1e300, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER, HUGE, "1", "", "NaN", true, null, [], {}),
  fc.double({ noInteger: true }),
);
const badSeconds = fc.oneof(
  fc.constantFrom(-1, -0.5, 31_536_001, 1e300, HUGE, "1", "", true, null, [], {}),
  fc.double({ min: -1e9, max: -1e-9, noNaN: true }),
);
const badBool = fc.oneof(fc.constantFrom("true", 1, 0, "", null, [], {}, HUGE));
const badJson = fc.oneof(
  fc.constantFrom("\u0000", { k: "a\u0000" }, { "\u0000": 1 }, ["\ud800"], { "\udc00": true }, { n: HUGE }, [1, [2, [HUGE]]]),
  fc.integer({ min: 70, max: 3000 }).map(deep),
  nastyString.filter((s) => s.includes("\u0000") || !s.isWellFormed()),
);
const badDatetime = fc.oneof(fc.constantFrom("yesterday", "2024-13-01T00:00:00Z", "2024-01-01", "2024-01-01T00:00:00", "\u0000", ""), notAString);
const badUrl = fc.oneof(fc.constantFrom("javascript:alert(1)", "file:///etc/passwd", "ftp://x", "not a url", "http://", `http://x/${"a".repeat(3000)}`, "http://a\u0000b"), notAString);
const badArray = fc.oneof(
  fc.constantFrom([], "fz", null, {}, [null], [1, 2], [{}], [{ id: "x", leaseToken: "y" }], [{ queue: "\u0000", kind: "k" }], [{ queue: "q", kind: "k", extra: 1 }]),
  fc.array(badName, { minLength: 1, maxLength: 3 }),
  fc.constant(Array.from({ length: 200 }, () => "q")),
);
const badRoles = fc.oneof(fc.constantFrom([], ["root"], "client", [1], ["client", "client", "worker", "admin"], null));
const badKeyTenant = fc.oneof(fc.constantFrom("", "a b", "**", "\u0000", "x".repeat(129)), notAString);

const badFor: Record<Kind, fc.Arbitrary<unknown>> = {
  name: badName, uuid: badUuid, int: badInt, seconds: badSeconds, bool: badBool, json: badJson, text: badText, url: badUrl, array: badArray,
  datetime: badDatetime, roles: badRoles, keytenant: badKeyTenant,
};
/**
 * Values that are in fact valid for one route's field: an empty optional list, an empty open
 * batch, a priority within ±1,000,000 (-1 is a bad value for every other integer field; drawn
 * for a priority, it failed this test: seed 163380452).
 */
const validAnyway = (spec: string, field: string, v: unknown) =>
  (Array.isArray(v) && v.length === 0 && ((spec === "process-next" && field === "kinds") || spec === "batch-create")) ||
  (field === "priority" && Number.isInteger(v) && Math.abs(v as number) <= 1_000_000);

// ---- requests -------------------------------------------------------------

interface Req {
  method: string;
  url: string;
  headers: Record<string, string>;
  payload?: string | Buffer;
  expect?: number;
}

const serialise = (v: unknown) => JSON.stringify(v).replaceAll(JSON.stringify(HUGE), "1e400");
const withBody = (s: Spec, body: unknown, extra: Record<string, string> = {}): Req => ({
  method: s.method,
  url: s.path(),
  headers: { authorization: auth, "content-type": "application/json", ...extra },
  payload: serialise(body),
});

const bodySpecs = SPECS.filter((s) => s.body);
const paramSpecs = SPECS.filter((s) => /\/(jobs|batches|api-keys)\/[0-9a-f-]{36}/.test(s.path()));

/** Each generator yields a request that is invalid for one stated reason. */
const reqs: Record<string, fc.Arbitrary<Req>> = {
  badField: fc
    .constantFrom(...bodySpecs.filter((s) => Object.keys(s.fields!).length > 0))
    .chain((s) => fc.tuple(fc.constant(s), fc.constantFrom(...Object.entries(s.fields!))))
    .chain(([s, [field, kind]]) =>
      badFor[kind].filter((v) => !validAnyway(s.name, field, v)).map((v) => withBody(s, { ...s.body!(), [field]: v })),
    ),
  unknownField: fc
    .tuple(fc.constantFrom(...bodySpecs), fc.string({ minLength: 1, maxLength: 12 }), fc.jsonValue({ maxDepth: 2 }))
    .filter(([s, k]) => !(k in (s.fields ?? {})) && k !== "__proto__")
    .map(([s, k, v]) => withBody(s, { ...s.body!(), [k]: v })),
  wrongShape: fc
    .tuple(fc.constantFrom(...bodySpecs), fc.constantFrom("[]", "[{}]", '"str"', "42", "true", '{"a":', "{,}", "\u0000", "nul", "{'a':1}", '{"a":1}{"b":2}', "\ufeff{}"))
    .map(([s, text]) => ({ ...withBody(s, {}), payload: text })),
  contentType: fc
    .tuple(
      fc.constantFrom(...bodySpecs),
      fc.constantFrom("application/xml", "multipart/form-data; boundary=x", "application/x-www-form-urlencoded", "image/png", "application/json; charset=utf-16", "text/html"),
    )
    .map(([s, ct]) => ({ ...withBody(s, s.body!()), headers: { authorization: auth, "content-type": ct } })),
  badParam: fc
    .tuple(
      fc.constantFrom(...paramSpecs),
      fc.oneof(
        fc.constantFrom("not-a-uuid", "%00", "%ED%A0%80", "%E0%A4%A", "..%2F..%2Fetc", "00000000-0000-0000-0000-00000000000g", "%27%3B--", "x".repeat(2000), "%F0%9F%98%80"),
        fc.string({ minLength: 1, maxLength: 40 }).map(encodeURIComponent).filter((s) => !/^[0-9a-f-]{36}$/i.test(s)),
      ),
    )
    .map(([s, bad]) => {
      const url = s.path().replace(/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/, bad);
      return s.body ? { ...withBody(s, s.body()), url } : { method: s.method, url, headers: { authorization: auth } };
    }),
  badTenantParam: fc
    .tuple(fc.constantFrom("GET", "POST"), fc.constantFrom("%00", "a%20b", "%ED%A0%80", "x".repeat(200), "%2A%2A", "%C3%A9"))
    .map(([m, t]) => ({ method: m, url: `/v1/tenants/${t}/webhook-secret${m === "POST" ? "/rotate" : ""}`, headers: { authorization: auth } })),
  badQuery: fc
    .tuple(
      fc.constantFrom("/v1/jobs", "/v1/batches"),
      fc.constantFrom(
        "limit=0", "limit=501", "limit=abc", "limit=1e400", "limit=1.5", "status=bogus", "cursor=%00", "cursor=garbage",
        "cursor=W10", `cursor=${"x".repeat(600)}`, "unknown=1", "limit=1&limit=2", "status[]=queued", "status=queued%00",
      ),
    )
    .map(([p, q]) => ({ method: "GET", url: `${p}?${q}`, headers: { authorization: auth } })),
  badJobQuery: fc
    .constantFrom("batchId=x", "queue=%00", "queue=a%20b", "kind=", `queue=${"q".repeat(200)}`, "batchId=%ED%A0%80")
    .map((q) => ({ method: "GET", url: `/v1/jobs?${q}`, headers: { authorization: auth } })),
  badThroughputQuery: fc
    .constantFrom("minutes=0", "minutes=1441", "minutes=abc", "minutes=1e400", "minutes=1.5", "minutes=-1", "minutes=%00", "unknown=1", "minutes=1&minutes=2")
    .map((q) => ({ method: "GET", url: `/v1/stats/throughput?${q}`, headers: { authorization: auth } })),
  badIfMatch: fc
    .tuple(
      fc.constantFrom(...SPECS.filter((s) => s.ifMatch)),
      fc.oneof(
        fc.string({ maxLength: 30 }).filter((h) => /^[\x20-\x7e]*$/.test(h)),
        fc.constantFrom('"0"', '"2"', 'W/"999999999"', '"1', '1"', "W/1", '"-1"', '"1e0"', '"01x"', "x".repeat(300)),
      ),
    )
    // Never a header that names the job's current version (1) or any version (*): those are valid.
    .filter(([, h]) => h.trim() !== "*" && !/^\s*(W\/)?"?0*1"?\s*$/.test(h) && h.trim() !== "")
    .map(([s, h]) => ({ ...withBody(s, s.body!()), headers: { authorization: auth, "content-type": "application/json", "if-match": h } })),
  badIdempotencyKey: fc
    .oneof(
      fc.constantFrom("a b", "\t", "x".repeat(256), "key\u007f", "caf\u00e9", "a,b c"),
      fc.string({ minLength: 1, maxLength: 20 }).map((s) => `${s.replace(/[^\x20-\x7e]/g, "")} x`),
    )
    .map((k) => withBody(SPECS[0]!, job(), { "idempotency-key": k })),
  badAuth: fc
    .tuple(
      fc.constantFrom(...SPECS),
      fc.constantFrom("", "Bearer", "Bearer ", "Basic YWxhZGRpbjpvcGVuc2VzYW1l", "Bearer nope", `Bearer ${"x".repeat(600)}`, "bearer\tx y", "Bearer jl_live_\u00e9"),
    )
    .map(([s, a]) => ({ ...(s.body ? withBody(s, s.body()) : { method: s.method, url: s.path(), headers: {} }), headers: { authorization: a, "content-type": "application/json" } })),
};

async function send(r: Req) {
  return setup.env.app.inject({ method: r.method as "GET", url: r.url, headers: r.headers, ...(r.payload === undefined ? {} : { payload: r.payload }) });
}

function check(r: Req, res: Awaited<ReturnType<typeof send>>) {
  const what = `${r.method} ${r.url.slice(0, 120)} ${JSON.stringify(r.headers).slice(0, 200)} ${String(r.payload ?? "").slice(0, 200)} → ${res.statusCode} ${res.body.slice(0, 300)}`;
  expect(res.statusCode, what).toBeGreaterThanOrEqual(400);
  expect(res.statusCode, what).toBeLessThan(500);
  if (r.expect) expect(res.statusCode, what).toBe(r.expect);
  expect(res.headers["content-type"], what).toMatch(/^application\/problem\+json/);
  const body = JSON.parse(res.body) as { code?: unknown; status?: unknown; type?: unknown; title?: unknown };
  expect(typeof body.code, what).toBe("string");
  expect(body.status, what).toBe(res.statusCode);
  expect(typeof body.type, what).toBe("string");
}

describe("hostile input", () => {
  it("property: every malformed request is a 4xx problem+json, never a 5xx, and writes nothing", async () => {
    const before = await fingerprint();
    const counts: Record<string, number> = {};
    const statuses: Record<number, number> = {};
    const all = fc.oneof(...Object.entries(reqs).map(([k, a]) => a.map((r) => ({ k, r }))));
    await fc.assert(
      fc.asyncProperty(all, async ({ k, r }) => {
        counts[k] = (counts[k] ?? 0) + 1;
        const res = await send(r);
        statuses[res.statusCode] = (statuses[res.statusCode] ?? 0) + 1;
        check(r, res);
      }),
      { numRuns: 1500, seed: Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31), verbose: 1 },
    );
    console.log(`fuzz: ${JSON.stringify(counts)} statuses ${JSON.stringify(statuses)}`);
    expect(await fingerprint()).toEqual(before);
  });

  it("oversized bodies (> 1 MiB) and payloads (> 256 KiB) are 413 problem+json and write nothing", async () => {
    const before = await fingerprint();
    const big = "x".repeat(1024 * 1024 + 10);
    const payload = "y".repeat(256 * 1024 + 10);
    const cases: Req[] = [
      ...SPECS.filter((s) => s.body && !s.name.startsWith("batch-create") && s.name !== "batch-add").map((s) => ({
        ...withBody(s, { ...s.body!(), pad: big }),
        expect: 413,
      })),
      { ...withBody(SPECS[0]!, { ...job(), payload: { s: payload } }), expect: 413 },
      { ...withBody(SPECS[0]!, { ...job(), payload: { s: payload } }, { "idempotency-key": "big" }), expect: 413 },
      { ...withBody(SPECS.find((s) => s.name === "batch-create")!, { jobs: [job(), { ...job(), payload: payload }] }), expect: 413 },
      { ...withBody(SPECS.find((s) => s.name === "batch-add")!, { jobs: [{ ...job(), payload: payload }] }), expect: 413 },
      { ...withBody(SPECS.find((s) => s.name === "complete")!, { leaseToken: fx.leaseToken, result: big }), expect: 413 },
    ];
    for (const r of cases) check(r, await send(r));
    expect(await fingerprint()).toEqual(before);
  });

  it("fixtures are untouched: the queued job is still queued, the running job still holds its lease", async () => {
    const rows = await setup.env.c.sql<{ id: string; status: string; version: number; leaseToken: string | null }[]>`
      SELECT id, status::text, version, lease_token FROM jobs WHERE id IN (${fx.queued}, ${fx.running}) ORDER BY status`;
    expect(rows.map((r) => [r.id, r.status, r.version])).toEqual(
      [[fx.queued, "queued", 1], [fx.running, "running", 2]],
    );
  });
});
