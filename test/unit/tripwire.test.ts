import { describe, expect, it } from "vitest";
import { Tripwire } from "../../src/services/tripwire.js";

describe("Tripwire", () => {
  it("calls each listener once when tripped (one added twice too), and none added after", () => {
    const t = new Tripwire();
    const calls: string[] = [];
    const a = () => calls.push("a");
    t.addEventListener("abort", a);
    t.addEventListener("abort", a);
    t.addEventListener("abort", () => calls.push("b"));
    expect(t.aborted).toBe(false);
    t.trip();
    t.trip();
    t.addEventListener("abort", () => calls.push("late"));
    expect(t.aborted).toBe(true);
    expect(calls).toEqual(["a", "b"]);
  });

  it("does not call a removed listener", () => {
    const t = new Tripwire();
    let called = false;
    const l = () => {
      called = true;
    };
    t.addEventListener("abort", l);
    t.removeEventListener("abort", l);
    t.trip();
    expect(called).toBe(false);
  });
});
