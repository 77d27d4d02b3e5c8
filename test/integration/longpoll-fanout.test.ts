import { describe, expect, it } from "vitest";
import { Tripwire } from "../../src/services/tripwire.js";
import { until } from "../e2e/helpers/util.js";
import { useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("longpoll_fanout");

/** A counter of the service's metrics registry, by labels. */
async function counter(name: string, labels: Record<string, string>) {
  const m = setup.env.c.metrics.registry.getSingleMetric(name);
  const values = (await m!.get()).values;
  return values.filter((v) => Object.entries(labels).every(([k, x]) => v.labels[k] === x)).reduce((n, v) => n + v.value, 0);
}
const wakes = (by: string, outcome: string) => counter("jobline_poll_wakes_total", { by, outcome });
const statements = (statement: string, outcome: string) => counter("jobline_poll_statements_total", { statement, outcome });

describe("long polls waiting on one queue, and submits", () => {
  it("one submit wakes one waiting poll, which finds the job: no claim per waiting poll per submit", async () => {
    const svc = setup.env.c.services.jobs;
    const M = 8;
    const N = 6;
    const stop = Array.from({ length: M }, () => new Tripwire());
    const taken: string[] = [];
    const polls = stop.map((signal, i) =>
      svc
        .claimNext({ queues: ["fanout"], scope: null, workerId: `w${i}`, leaseSeconds: 30, max: 10, waitMs: 20_000, signal })
        .then((rows) => taken.push(...rows.map((r) => r.id))),
    );
    await until("every poll to wait", () => (setup.env.c.notifier.waiting >= M ? true : undefined), 10_000, 5);
    const before = {
      woke: await wakes("announcement", "found"),
      wokeEmpty: await wakes("announcement", "empty"),
      recheckFound: await wakes("recheck", "found"),
      claimsFound: await statements("claim", "found"),
      promotions: (await statements("promote", "found")) + (await statements("promote", "empty")),
    };
    const ids: string[] = [];
    for (let i = 0; i < N; i++) {
      const r = await svc.submit("acme", { queue: "fanout", kind: "k", payload: { i } });
      if (!r.ok) throw new Error("submit failed");
      ids.push(r.value.id);
      await until(`job ${i} to be claimed`, () => (taken.length === i + 1 ? true : undefined), 10_000, 1);
    }
    const woke = (await wakes("announcement", "found")) - before.woke;
    const wokeEmpty = (await wakes("announcement", "empty")) - before.wokeEmpty;
    // A poll's 1 s re-check (a slow machine makes this test last seconds) can take a job
    // before the poll its submit woke claims: that poll then finds nothing.
    const recheckFound = (await wakes("recheck", "found")) - before.recheckFound;
    const claimsFound = (await statements("claim", "found")) - before.claimsFound;
    const promotions = (await statements("promote", "found")) + (await statements("promote", "empty")) - before.promotions;
    console.log(`${N} submits, ${M} waiting polls: ${woke} woke and found, ${wokeEmpty} woke and found nothing, ${recheckFound} re-checks found one, ${claimsFound} claims found, ${promotions} promotions`);
    for (const s of stop) s.trip();
    await Promise.all(polls);
    expect(taken.sort()).toEqual(ids.sort());
    // Woken by an announcement: exactly one poll per submit, and it found its job. Waking every
    // waiting poll made 8 + 7 + … + 3 = 33 wake-ups, 27 of them claims that found nothing
    // (a shared statement and a promotion each time).
    expect(woke + wokeEmpty).toBe(N);
    expect(wokeEmpty).toBeLessThanOrEqual(recheckFound);
    expect(claimsFound).toBe(N);
  });

  it("a woken poll that leaves without claiming passes its wake-up to another waiting poll", async () => {
    const notifier = setup.env.c.notifier;
    const first = notifier.wait({ queues: ["handoff"], tenant: null }, 10_000);
    const second = notifier.wait({ queues: ["handoff"], tenant: null }, 10_000);
    notifier.notify("handoff", { kind: "k", tenant: "acme" });
    const a = await first;
    expect(a).toEqual({ queue: "handoff", kind: "k", tenant: "acme" });
    let secondWoke = false;
    void second.then(() => {
      secondWoke = true;
    });
    await new Promise((r) => setTimeout(r, 100));
    // One job, one wake-up.
    expect(secondWoke).toBe(false);
    const t0 = performance.now();
    notifier.passOn(a!);
    expect(await second).toEqual(a);
    expect(performance.now() - t0).toBeLessThan(5000);
  });

  it("a submit wakes a poll that can take its job, not one waiting for another kind or tenant", async () => {
    const notifier = setup.env.c.notifier;
    const otherKind = notifier.wait({ queues: ["match"], kinds: ["a"], tenant: null }, 10_000);
    const otherTenant = notifier.wait({ queues: ["match"], tenant: "globex" }, 10_000);
    const right = notifier.wait({ queues: ["match"], kinds: ["b"], tenant: "acme" }, 10_000);
    const r = await setup.env.c.services.jobs.submit("acme", { queue: "match", kind: "b", payload: {} });
    expect(r.ok).toBe(true);
    expect(await right).toEqual({ queue: "match", kind: "b", tenant: "acme" });
    const woken: string[] = [];
    void otherKind.then((a) => a && woken.push("kind"));
    void otherTenant.then((a) => a && woken.push("tenant"));
    await new Promise((r) => setTimeout(r, 100));
    expect(woken).toEqual([]);
    notifier.notify("match");
    // A bare announcement (a batch, a promotion) still wakes every poll of the queue.
    expect(await otherKind).toEqual({ queue: "match" });
    expect(await otherTenant).toEqual({ queue: "match" });
  });
});
