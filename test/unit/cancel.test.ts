import { describe, expect, it } from "vitest";
import { Tripwire } from "../../src/services/cancel.js";

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

  it("follows its parent's abort, and stops following once disposed", () => {
    const parent = new AbortController();
    const followed = new Tripwire(parent.signal);
    let woke = false;
    followed.addEventListener("abort", () => {
      woke = true;
    });
    parent.abort();
    expect(followed.aborted).toBe(true);
    expect(woke).toBe(true);

    const other = new AbortController();
    const disposed = new Tripwire(other.signal);
    disposed.dispose();
    other.abort();
    expect(disposed.aborted).toBe(false);
  });

  it("starts tripped under a parent that already aborted, and tripping it leaves the parent alone", () => {
    const done = new AbortController();
    done.abort();
    expect(new Tripwire(done.signal).aborted).toBe(true);

    const parent = new Tripwire();
    const child = new Tripwire(parent);
    child.trip();
    expect(parent.aborted).toBe(false);
  });
});
