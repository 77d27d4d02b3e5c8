import { describe, expect, it } from "vitest";
import { processNext, useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("core_cancel_race", {}, { listen: true });

/** Runs `n` trials, `width` at a time. */
async function bounded(n: number, width: number, trial: (t: number) => Promise<void>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: width }, async () => {
      for (let t = next++; t < n; t = next++) await trial(t);
    }),
  );
}

const both = <A, B>(a: () => Promise<A>, b: () => Promise<B>, flip: boolean): Promise<[A, B]> =>
  flip ? Promise.all([b(), a()]).then(([y, x]) => [x, y]) : Promise.all([a(), b()]);

describe("cancel vs claim on one job", () => {
  it("500 trials, 25 at a time: exactly one wins each time", async () => {
    const svc = setup.env.c.services.jobs;
    const wins = { cancel: 0, claim: 0 };
    await bounded(500, 25, async (t) => {
      const queue = `cr${t}`;
      const s = await svc.submit("acme", { queue, kind: "k", payload: { t } });
      if (!s.ok) throw new Error(s.error);
      const id = s.value.id;
      // Half claim by id, half through process-next's query on a queue holding only this job.
      const claim = async () => {
        if (t % 2 === 0) {
          const r = await svc.claim(id, "acme", { workerId: "w", leaseSeconds: 60 });
          return r.ok ? r.value : r.error;
        }
        const rows = await svc.claimNext({ queues: [queue], scope: "acme", workerId: "w", leaseSeconds: 60, max: 5, waitMs: 0 });
        return rows[0] ?? "empty";
      };
      const [cancelled, claimed] = await both(() => svc.cancel(id, "acme"), claim, t % 4 >= 2);
      expect(cancelled.ok, `trial ${t}: ${JSON.stringify(cancelled)}`).toBe(true);
      if (!cancelled.ok) return;
      const [row] = await setup.env.c.sql<{ status: string; attempts: number; cancelRequested: boolean; version: number }[]>`
        SELECT status::text, attempts, cancel_requested, version FROM jobs WHERE id = ${id}`;
      if (cancelled.value.status === "cancelled") {
        wins.cancel++;
        expect(typeof claimed === "string" ? claimed : "claimed", `trial ${t}`).toBe(t % 2 === 0 ? "not_queued" : "empty");
        expect(row).toEqual({ status: "cancelled", attempts: 0, cancelRequested: false, version: 2 });
      } else {
        wins.claim++;
        expect(cancelled.value.status, `trial ${t}`).toBe("running");
        expect(cancelled.value.cancelRequested).toBe(true);
        expect(typeof claimed, `trial ${t}: ${String(claimed)}`).toBe("object");
        expect(row).toEqual({ status: "running", attempts: 1, cancelRequested: true, version: 3 });
        // The cancel's representation is its own statement's result, after the claim.
        expect(cancelled.value.version).toBe(3);
      }
    });
    console.log(`cancel vs claim over 500 trials: ${JSON.stringify(wins)}`);
    expect(wins.cancel + wins.claim).toBe(500);
    // Both sides won sometimes, or the two never actually raced.
    expect(wins.cancel).toBeGreaterThan(0);
    expect(wins.claim).toBeGreaterThan(0);
  });

  it("over HTTP: the claim that loses to a cancel gets 409, the cancel that loses gets running + cancelRequested", async () => {
    const client = await setup.env.key("acme", "client");
    const worker = await setup.env.key("acme", "worker");
    const wins = { cancel: 0, claim: 0 };
    await bounded(100, 10, async (t) => {
      const sub = await setup.env.http().post("/v1/jobs").set("authorization", client).send({ queue: "http", kind: "k", payload: { t } });
      expect(sub.status).toBe(201);
      const id = sub.body.id as string;
      const cancel = () => setup.env.http().post(`/v1/jobs/${id}/cancel`).set("authorization", client);
      const claim = () => setup.env.http().post(`/v1/jobs/${id}/claim`).set("authorization", worker).send({ workerId: "w" });
      const [c, k] = await both(cancel, claim, t % 2 === 0);
      expect(c.status, `trial ${t}: ${JSON.stringify(c.body)}`).toBe(200);
      if (c.body.status === "cancelled") {
        wins.cancel++;
        expect(k.status, `trial ${t}`).toBe(409);
        expect(k.headers["content-type"]).toMatch(/application\/problem\+json/);
        expect(k.body.code).toBe("not_queued");
      } else {
        wins.claim++;
        expect(c.body).toMatchObject({ status: "running", cancelRequested: true });
        expect(k.status, `trial ${t}`).toBe(200);
        expect(k.body.status).toBe("running");
      }
      const get = await setup.env.http().get(`/v1/jobs/${id}`).set("authorization", client);
      expect(get.body.status).toBe(c.body.status);
    });
    console.log(`HTTP cancel vs claim over 100 trials: ${JSON.stringify(wins)}`);
    expect(wins.cancel + wins.claim).toBe(100);
  });

  it("when cancel won, a claim afterwards is 409 over HTTP, and so is a cancel of the cancelled job", async () => {
    const client = await setup.env.key("acme", "client");
    const worker = await setup.env.key("acme", "worker");
    const sub = await setup.env.http().post("/v1/jobs").set("authorization", client).send({ queue: "http2", kind: "k" });
    const c = await setup.env.http().post(`/v1/jobs/${sub.body.id}/cancel`).set("authorization", client);
    expect(c.body.status).toBe("cancelled");
    const k = await setup.env.http().post(`/v1/jobs/${sub.body.id}/claim`).set("authorization", worker).send({ workerId: "w" });
    expect(k.status).toBe(409);
    expect(k.body.code).toBe("not_queued");
    expect((await processNext(setup.env, worker, { queues: ["http2"] })).jobs).toEqual([]);
    const again = await setup.env.http().post(`/v1/jobs/${sub.body.id}/cancel`).set("authorization", client);
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("terminal");
  });
});
