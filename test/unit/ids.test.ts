import { describe, expect, it } from "vitest";
import { uuidv7 } from "../../src/domain/ids.js";

const UUID_V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string) => Number.parseInt(id.replace(/-/g, "").slice(0, 12), 16);

describe("uuidv7", () => {
  it("is an RFC 9562 version 7 UUID carrying the given millisecond", () => {
    const t = Date.UTC(2026, 10, 24, 12, 0, 0, 123);
    const id = uuidv7(t + 10_000);
    expect(id).toMatch(UUID_V7);
    expect(msOf(id)).toBe(t + 10_000);
    expect(new Set(Array.from({ length: 5000 }, () => uuidv7(t + 20_000))).size).toBe(5000);
  });

  it("only grows within a process: in one millisecond, past 4,096 of them, and when the clock steps back", () => {
    const t = Date.UTC(2026, 10, 24, 13, 0, 0, 0);
    const ids = [
      ...Array.from({ length: 5000 }, () => uuidv7(t)), // more than the 12-bit sequence holds
      ...Array.from({ length: 10 }, () => uuidv7(t - 60_000)), // the clock stepped back a minute
      ...Array.from({ length: 10 }, (_, i) => uuidv7(t + 5 + i)),
    ];
    for (const id of ids) expect(id).toMatch(UUID_V7);
    for (let i = 1; i < ids.length; i++) expect(ids[i]! > ids[i - 1]!, `id ${i}`).toBe(true);
    // The sequence ran out once: the time part ran one millisecond ahead instead of repeating.
    expect(msOf(ids[4999]!)).toBe(t + 1);
    expect(msOf(ids.at(-1)!)).toBe(t + 14);
  });
});
