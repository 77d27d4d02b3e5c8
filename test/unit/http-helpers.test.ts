import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { clientErrorProblem, problem, rawProblemResponse, statusOf } from "../../src/http/problem.js";
import { validTracestate } from "../../src/domain/traceContext.js";
import { jsonProblem, parseIfMatch, Tracestate } from "../../src/http/schemas/common.js";
import { canonicalJson } from "../../src/services/jobs.js";

describe("parseIfMatch", () => {
  it("reads the strong, weak and bare forms of a version", () => {
    expect(parseIfMatch('"3"')).toBe(3);
    expect(parseIfMatch('W/"3"')).toBe(3);
    expect(parseIfMatch("3")).toBe(3);
    expect(parseIfMatch('  "12"  ')).toBe(12);
    expect(parseIfMatch('"0"')).toBe(0);
  });

  it("treats absent and * as any version", () => {
    expect(parseIfMatch(undefined)).toBeUndefined();
    expect(parseIfMatch("*")).toBeUndefined();
    expect(parseIfMatch(" * ")).toBeUndefined();
  });

  it("maps anything else to a version no row has (412, never a wildcard)", () => {
    for (const h of ["", "abc", '"abc"', '"-1"', "-1", '"1.5"', '"1", "2"', "W/", '"9999999999"', "1e3", "\u0000", '"3', "**"]) {
      expect(parseIfMatch(h), JSON.stringify(h)).toBe(-1);
    }
  });

  it("never returns a version outside 0..999999999 or undefined for a non-wildcard string", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (h) => {
        const v = parseIfMatch(h);
        if (h.trim() === "*") expect(v).toBeUndefined();
        else {
          expect(Number.isInteger(v)).toBe(true);
          expect(v!).toBeGreaterThanOrEqual(-1);
          expect(v!).toBeLessThanOrEqual(999_999_999);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe("canonicalJson", () => {
  it("sorts keys at every depth and keeps array order", () => {
    expect(canonicalJson({ b: 1, a: { d: [3, 1, { z: 1, y: 2 }], c: null } })).toBe(
      '{"a":{"c":null,"d":[3,1,{"y":2,"z":1}]},"b":1}',
    );
    expect(canonicalJson([2, 1])).not.toBe(canonicalJson([1, 2]));
  });

  it("drops undefined fields, so an omitted optional equals an absent one", () => {
    expect(canonicalJson({ a: 1, b: undefined })).toBe(canonicalJson({ a: 1 }));
  });

  it("is valid JSON for the same value, and invariant under key order", () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const s = canonicalJson(v);
        expect(JSON.parse(s)).toEqual(JSON.parse(JSON.stringify(v)));
        const reversed = JSON.parse(JSON.stringify(v), (_k, x) =>
          x !== null && typeof x === "object" && !Array.isArray(x) ? Object.fromEntries(Object.entries(x).reverse()) : x,
        );
        expect(canonicalJson(reversed)).toBe(s);
      }),
      { numRuns: 500 },
    );
  });

  it("distinguishes values that differ only in type or nesting", () => {
    expect(canonicalJson({ a: "1" })).not.toBe(canonicalJson({ a: 1 }));
    expect(canonicalJson({ a: [1] })).not.toBe(canonicalJson({ a: 1 }));
    expect(canonicalJson({ "a,b": 1 })).not.toBe(canonicalJson({ a: 1, b: 1 }));
  });
});

describe("jsonProblem", () => {
  const nest = (n: number): unknown => {
    let v: unknown = 1;
    for (let i = 0; i < n; i++) v = [v];
    return v;
  };

  it("accepts ordinary JSON, emoji (surrogate pairs) included", () => {
    expect(jsonProblem({ a: [1, "x", null, true, { b: "😀" }], "ключ": "значение" })).toBeNull();
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 10 }), (v) => {
        const s = JSON.stringify(v);
        if (!s.includes("\\u0000") && s.isWellFormed()) expect(jsonProblem(v)).toBeNull();
      }),
      { numRuns: 300 },
    );
  });

  it("refuses NUL and lone surrogates in values and in keys, at any depth", () => {
    expect(jsonProblem("a\u0000b")).toMatch(/NUL/);
    expect(jsonProblem({ "k\u0000": 1 })).toMatch(/NUL/);
    expect(jsonProblem({ a: [{ b: "\ud800" }] })).toMatch(/surrogate/);
    expect(jsonProblem({ "\udfff": 1 })).toMatch(/surrogate/);
  });

  it("refuses nesting deeper than 64 levels, and accepts 64", () => {
    expect(jsonProblem(nest(64))).toBeNull();
    expect(jsonProblem(nest(65))).toMatch(/deeper/);
    expect(jsonProblem(nest(100_000))).toMatch(/deeper/);
    // Levels are arrays and objects, whatever the innermost holds: 65 around nothing is 65.
    const empty = (n: number): unknown => (n === 1 ? [] : [empty(n - 1)]);
    expect(jsonProblem(empty(64))).toBeNull();
    expect(jsonProblem(empty(65))).toMatch(/deeper/);
  });

  it("refuses numbers JSON cannot carry (1e400 parses to Infinity and would be stored as null)", () => {
    expect(jsonProblem(JSON.parse('{"a":1e400}'))).toMatch(/number/);
    expect(jsonProblem([Number.NaN])).toMatch(/number/);
    expect(jsonProblem(1.7976931348623157e308)).toBeNull();
  });
});

describe("problem", () => {
  it("builds RFC 9457 bodies with a stable code and the mapped status", () => {
    expect(problem("not_found")).toEqual({
      type: "urn:jobline:problem:not_found",
      title: "Not Found",
      status: 404,
      detail: "not found",
      code: "not_found",
    });
    expect(problem("lease_lost", "gone").status).toBe(409);
    expect(problem("version_mismatch").status).toBe(412);
    expect(problem("idempotency_mismatch").status).toBe(422);
    expect(problem("payload_too_large").status).toBe(413);
    expect(statusOf("something_new")).toBe(400);
  });
});

describe("raw problem responses for requests the HTTP parser refused", () => {
  it("maps parser errors to 400, 408 and 431", () => {
    expect(clientErrorProblem("HPE_INVALID_HEADER_TOKEN")).toMatchObject({ status: 400, code: "invalid_request" });
    expect(clientErrorProblem(undefined).status).toBe(400);
    expect(clientErrorProblem("HPE_HEADER_OVERFLOW")).toMatchObject({ status: 431, code: "headers_too_large" });
    expect(clientErrorProblem("ERR_HTTP_REQUEST_TIMEOUT")).toMatchObject({ status: 408, code: "request_timeout" });
  });

  it("is a complete HTTP/1.1 response whose Content-Length counts bytes, not characters", () => {
    const p = problem("invalid_request", "é ünïcödé");
    const text = rawProblemResponse(p);
    const [head, body] = text.split("\r\n\r\n") as [string, string];
    expect(head.split("\r\n")[0]).toBe("HTTP/1.1 400 Bad Request");
    expect(head).toMatch(/Content-Type: application\/problem\+json/);
    expect(head).toContain(`Content-Length: ${Buffer.byteLength(body)}`);
    expect(JSON.parse(body)).toEqual(p);
  });
});

describe("tracestate: what a body may carry and what is kept agree", () => {
  it("accepts an empty or blank tracestate (W3C: receivers must) and keeps none", () => {
    for (const s of ["", " ", "   "]) {
      expect(Tracestate.safeParse(s).success, JSON.stringify(s)).toBe(true);
      expect(validTracestate(s)).toBeNull();
    }
  });

  it("takes at most 512 characters, as the domain keeps", () => {
    const max = "a=".padEnd(512, "b");
    expect(Tracestate.safeParse(max).success && validTracestate(max) === max).toBe(true);
    expect(Tracestate.safeParse(`${max}b`).success || validTracestate(`${max}b`) !== null).toBe(false);
  });

  it("keeps every other accepted value (trimmed), and accepts every value the domain keeps as is", () => {
    const chars = fc.constantFrom(..."ab=,-_ ~\t\n\u007f\u0000\u00e9");
    fc.assert(
      fc.property(fc.oneof(fc.string({ unit: chars, maxLength: 520 }), fc.string({ maxLength: 20 })), (s) => {
        if (Tracestate.safeParse(s).success) expect(validTracestate(s) ?? "").toBe(s.trim());
        if (validTracestate(s) === s) expect(Tracestate.safeParse(s).success).toBe(true);
      }),
    );
  });
});
