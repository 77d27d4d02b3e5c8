import { describe, expect, it } from "vitest";
import { decodeCursor, encodeCursor } from "../../src/http/cursor.js";

const id = "5b0c1f7e-2a49-4c1e-9a53-0d2f6a1e9b11";
const raw = (v: unknown) => Buffer.from(JSON.stringify(v)).toString("base64url");

describe("keyset cursor", () => {
  it("round-trips PostgreSQL's text form and ISO form with microseconds", () => {
    for (const createdAt of ["2026-11-23 08:23:37.372593+00", "2026-11-23T08:23:37.372593Z", "2026-11-23 08:23:37+00"]) {
      expect(decodeCursor(encodeCursor({ createdAt, id }))).toEqual({ createdAt, id });
    }
  });
  it("refuses anything PostgreSQL would choke on or we never issued", () => {
    for (const bad of [
      raw(["2026-02-31 00:00:00+00", id]),
      raw(["2026-13-01 00:00:00+00", id]),
      raw(["2026-11-23 08:23:37+05", id]),
      raw(["2026-11-23 08:23:37+00", "not-a-uuid"]),
      raw(["'; DROP TABLE jobs; --", id]),
      raw({ a: 1 }),
      "%%%",
      "",
    ])
      expect(decodeCursor(bad)).toBeNull();
  });
});
