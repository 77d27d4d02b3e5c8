import { describe, expect, it } from "vitest";
import { parseTimestamptz } from "../../src/db/client.js";
import { jobDto } from "../../src/services/representation.js";
import type { JobRow } from "../../src/repositories/jobs.js";

describe("timestamptz parsing with a memory of recent texts", () => {
  const texts = [
    "2026-11-23 17:32:06.123456+00",
    "2026-11-23 17:32:06+00",
    "2026-11-23 17:32:06.5+05:30",
    "1969-12-31 23:59:59.999999-08",
    "2026-11-23 17:32:06.123456+00",
    // Invalid for Date as for the cache: it must stay invalid, not turn into a cached value.
    "infinity",
  ];

  it("gives what new Date gives, for every text and every order, repeats included", () => {
    // Cycles longer than the memory, and repeats inside it.
    for (let round = 0; round < 3; round++)
      for (const t of [...texts, ...texts.slice().reverse(), texts[0]!, texts[0]!]) {
        const want = new Date(t).getTime();
        const got = parseTimestamptz(t).getTime();
        if (Number.isNaN(want)) expect(Number.isNaN(got)).toBe(true);
        else expect(got).toBe(want);
      }
  });

  it("never hands out the same Date object twice: a caller that mutates one cannot change another row", () => {
    const a = parseTimestamptz("2026-01-02 03:04:05.678+00");
    const b = parseTimestamptz("2026-01-02 03:04:05.678+00");
    expect(a).not.toBe(b);
    a.setTime(0);
    expect(b.toISOString()).toBe("2026-01-02T03:04:05.678Z");
  });
});

describe("jobDto's ISO timestamps", () => {
  const row = (ms: number[]): JobRow =>
    ({
      runAt: new Date(ms[0]!),
      leaseExpiresAt: new Date(ms[1]!),
      createdAt: new Date(ms[2]!),
      updatedAt: new Date(ms[3]!),
      startedAt: new Date(ms[4]!),
      finishedAt: null,
    }) as unknown as JobRow;

  it("match toISOString for rows that share, and rows that do not share, their timestamps", () => {
    const base = Date.UTC(2026, 10, 23, 17, 0, 0);
    for (let i = 0; i < 50; i++) {
      // Half the rows repeat one set of times; the rest all differ (more values than the memory holds).
      const ms = i % 2 === 0 ? [base, base + 1, base + 2, base + 3, base + 4] : [0, 1, 2, 3, 4].map((k) => base + i * 1000 + k * 7);
      const d = jobDto(row(ms));
      expect([d.runAt, d.leaseExpiresAt, d.createdAt, d.updatedAt, d.startedAt]).toEqual(ms.map((m) => new Date(m).toISOString()));
      expect(d.finishedAt).toBeNull();
    }
  });
});
