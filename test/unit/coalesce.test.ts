import { describe, expect, it } from "vitest";
import { coalescer, keyedCoalescer } from "../../src/services/coalesce.js";
import { storableProblem } from "../../src/domain/json.js";

const tick = () => new Promise((r) => setTimeout(r, 1));

describe("coalescer", () => {
  it("runs a lone call at once and lets calls made meanwhile share the next run, each answered on its own", async () => {
    const runs: number[][] = [];
    const c = coalescer<number, number>(
      async (xs) => {
        runs.push(xs);
        await tick();
        return xs.map((x) => x * 10);
      },
      { inFlight: 1, maxUnits: 100, units: () => 1 },
    );
    const out = await Promise.all([1, 2, 3, 4].map((x) => c.call(x)));
    expect(out).toEqual([10, 20, 30, 40]);
    expect(runs).toEqual([[1], [2, 3, 4]]);
  });

  it("a failed run fails exactly its own calls, and the next run still happens", async () => {
    const c = coalescer<number, number>(
      async (xs) => {
        await tick();
        if (xs.includes(2)) throw new Error("boom");
        return xs;
      },
      { inFlight: 1, maxUnits: 1, units: () => 1 },
    );
    const out = await Promise.allSettled([1, 2, 3].map((x) => c.call(x)));
    expect(out.map((o) => o.status)).toEqual(["fulfilled", "rejected", "fulfilled"]);
  });

  it("keyed: a key is dropped once its work is done, so varying filters cannot grow memory", async () => {
    const k = keyedCoalescer<string, number, number>(
      async (_key, xs) => {
        await tick();
        return xs;
      },
      { inFlight: 1, maxUnits: 10, units: () => 1, keyOf: (s) => s },
    );
    await Promise.all(Array.from({ length: 200 }, (_, i) => k(`key${i % 50}`, i)));
    expect(k.activeKeys()).toBe(0);
  });
});

describe("storableProblem", () => {
  it("judges the JSON that would be stored, toJSON included", () => {
    expect(storableProblem({ ok: true })).toBeNull();
    expect(storableProblem(undefined)).toBeNull();
    expect(storableProblem({ n: 1n })).toMatch(/BigInt/i);
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    expect(storableProblem(cyclic)).toMatch(/circular/i);
    expect(storableProblem({ tag: { toJSON: () => "a\u0000b" } })).toMatch(/NUL/);
    expect(storableProblem({ tag: { toJSON: () => "\ud800" } })).toMatch(/surrogate/);
  });
});
