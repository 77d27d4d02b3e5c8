import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type BackoffConfig, backoffMs, DEFAULT_BACKOFF } from "../../src/domain/backoff.js";

const ceiling = (attempts: number, cfg: BackoffConfig) => Math.min(cfg.maxMs, cfg.baseMs * 2 ** Math.max(0, attempts - 1));

describe("full-jitter backoff", () => {
  it("stays in [0, min(max, base * 2^(attempts-1))) for every attempt and draw", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (attempts, baseMs, maxMs, u) => {
          const cfg = { baseMs, maxMs };
          const d = backoffMs(attempts, cfg, u);
          expect(Number.isInteger(d)).toBe(true);
          expect(d).toBeGreaterThanOrEqual(0);
          const top = ceiling(attempts, cfg);
          if (top > 0) expect(d).toBeLessThan(top);
          else expect(d).toBe(0);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("doubles the ceiling per attempt until the cap, and jitters over the whole range", () => {
    const cfg = { baseMs: 1000, maxMs: 60_000 };
    const near1 = 1 - Number.EPSILON;
    expect([1, 2, 3, 4, 5, 6, 7, 8].map((a) => backoffMs(a, cfg, near1))).toEqual([
      999, 1999, 3999, 7999, 15999, 31999, 59999, 59999,
    ]);
    expect(backoffMs(5, cfg, 0)).toBe(0);
    expect(backoffMs(3, cfg, 0.5)).toBe(2000);
    // attempts 0 (never claimed) behaves like the first attempt rather than a half step.
    expect(backoffMs(0, cfg, near1)).toBe(999);
    // Huge attempt counts do not overflow past the cap (2^1000 is finite, 2^2000 is Infinity).
    expect(backoffMs(2000, DEFAULT_BACKOFF, near1)).toBe(DEFAULT_BACKOFF.maxMs - 1);
  });
});
