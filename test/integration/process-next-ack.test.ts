// process-next's `complete`: a worker acknowledges what it finished with its next poll.
import { describe, expect, it } from "vitest";
import { processNext, submitJob, useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

const setup = useTestEnv("process_next_ack");

type Claimed = { id: string; leaseToken: string; version: number };
type Ack = { id: string; leaseToken: string; result?: unknown };

const submit = (queue: string, extra: object = {}) =>
  submitJob<{ id: string }>(setup.env, setup.client, { queue, kind: "k", payload: { x: 1 }, ...extra });
const poll = (queue: string, { key = setup.worker, ...body }: { complete?: Ack[]; waitMs?: number; max?: number; key?: string } = {}) =>
  processNext<Claimed>(setup.env, key, { queues: [queue], ...body });
const job = async (id: string) => (await setup.env.http().get(`/v1/jobs/${id}`).set("authorization", setup.client)).body;
const events = async (id: string) =>
  (await setup.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_outbox WHERE subject_id = ${id} AND event_type = 'job.succeeded'`)[0]!.n;
/** A real rollback of one job's success, by a trigger raising `code`, while `fn` runs. */
const refusingSuccessOf = async (id: string, code: string, fn: () => Promise<void>) => {
  const name = `refuse_${code.toLowerCase()}_${id.replaceAll("-", "")}`;
  await setup.env.c.sql.unsafe(`
    CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'refused by the test' USING ERRCODE = '${code}'; END $$;
    CREATE TRIGGER ${name} BEFORE UPDATE ON jobs FOR EACH ROW
      WHEN (NEW.id = '${id}' AND NEW.status = 'succeeded') EXECUTE FUNCTION ${name}();`);
  try {
    await fn();
  } finally {
    await setup.env.c.sql.unsafe(`DROP TRIGGER ${name} ON jobs; DROP FUNCTION ${name}()`);
  }
};

describe("process-next with complete", () => {
  it("completes the finished job and leases the next in one request; the same request again replays, with no second event", async () => {
    const a = await submit("ack1", { webhookUrl: "https://example.com/hook" });
    const b = await submit("ack1");
    const [ja] = (await poll("ack1")).jobs;
    expect(ja!.id).toBe(a.id);
    const without = await poll("ack1", { max: 1, waitMs: 0, complete: undefined });
    expect(without).not.toHaveProperty("completed");
    const [jb] = without.jobs;
    expect(jb!.id).toBe(b.id);

    const ack = [{ id: ja!.id, leaseToken: ja!.leaseToken, result: { n: 1 } }];
    const first = await poll("ack1", { complete: ack });
    expect(first.completed).toEqual([{ id: a.id, status: 200 }]);
    const done = await job(a.id);
    expect(done).toMatchObject({ status: "succeeded", result: { n: 1 } });
    expect(await events(a.id)).toBe(1);

    const again = await poll("ack1", { complete: ack });
    expect(again.completed).toEqual([{ id: a.id, status: 200 }]);
    expect((await job(a.id)).version).toBe(done.version);
    expect(await events(a.id)).toBe(1);
  });

  it("acknowledges and leases in the same request", async () => {
    const a = await submit("ack2");
    const b = await submit("ack2");
    const [ja] = (await poll("ack2")).jobs;
    expect(ja!.id).toBe(a.id);
    const r = await poll("ack2", { complete: [{ id: ja!.id, leaseToken: ja!.leaseToken }] });
    expect(r.completed).toEqual([{ id: a.id, status: 200 }]);
    expect(r.jobs.map((j) => j.id)).toEqual([b.id]);
    expect((await job(a.id)).status).toBe("succeeded");
    expect((await job(b.id)).status).toBe("running");
  });

  it("answers each item on its own, in order: a stale token 409, an unknown or another tenant's job 404; the poll still leases", async () => {
    const mine = await submit("ack3");
    const other = await setup.env.http().post("/v1/jobs").set("authorization", await setup.env.key("globex", "client"))
      .send({ queue: "ack3", kind: "k" });
    const otherWorker = await setup.env.key("globex", "worker");
    const [theirs] = (await poll("ack3", { key: otherWorker })).jobs;
    expect(theirs!.id).toBe(other.body.id);
    const [jm] = (await poll("ack3")).jobs;
    expect(jm!.id).toBe(mine.id);
    const next = await submit("ack3");

    const r = await poll("ack3", {
      complete: [
        { id: jm!.id, leaseToken: crypto.randomUUID() },
        { id: crypto.randomUUID(), leaseToken: crypto.randomUUID() },
        { id: theirs!.id, leaseToken: theirs!.leaseToken },
      ],
    });
    expect(r.completed!.map((c) => [c.id, c.status, c.problem?.code])).toEqual([
      [jm!.id, 409, "lease_lost"],
      [expect.any(String), 404, "not_found"],
      [theirs!.id, 404, "not_found"],
    ]);
    expect(r.jobs.map((j) => j.id)).toEqual([next.id]);
    expect((await job(mine.id)).status).toBe("running");
    const theirsNow = await setup.env.http().get(`/v1/jobs/${theirs!.id}`).set("authorization", await setup.env.key("globex", "client"));
    expect(theirsNow.body.status).toBe("running");
  });

  it("commits the completions before a long poll waits, and answers them when it returns", async () => {
    const a = await submit("ack4");
    const [ja] = (await poll("ack4")).jobs;
    const waiting = poll("ack4", { waitMs: 10_000, complete: [{ id: ja!.id, leaseToken: ja!.leaseToken }] });
    await until("the completion to commit", async () => (await job(a.id)).status === "succeeded" || undefined, 5000);
    const b = await submit("ack4");
    const r = await waiting;
    expect(r.completed).toEqual([{ id: a.id, status: 200 }]);
    expect(r.jobs.map((j) => j.id)).toEqual([b.id]);
  });

  it("refuses more than 100 items, and an item that is not a job reference", async () => {
    const many = Array.from({ length: 101 }, () => ({ id: crypto.randomUUID(), leaseToken: crypto.randomUUID() }));
    for (const complete of [many, [{ id: "nope", leaseToken: crypto.randomUUID() }], [{ id: crypto.randomUUID() }]]) {
      const r = await setup.env.http().post("/v1/process-next").set("authorization", setup.worker).send({ queues: ["ack5"], workerId: "w", complete });
      expect(r.status).toBe(400);
      expect(r.body.code).toBe("invalid_request");
    }
  });

  it.each([
    ["the database rolled them back as a deadlock victim", "40P01", 503, "unavailable"],
    ["of any other error", "P0001", 500, "internal"],
  ])("completions that fail because %s (SQLSTATE %s) are answered %i on their items; the poll leases nothing, so no job sits leased to nobody", async (_, code, status, problemCode) => {
    const queue = `ack6_${code}`;
    const a = await submit(queue);
    const [ja] = (await poll(queue)).jobs;
    const b = await submit(queue);
    await refusingSuccessOf(a.id, code, async () => {
      const r = await poll(queue, { complete: [{ id: ja!.id, leaseToken: ja!.leaseToken }] });
      expect(r.completed!.map((c) => [c.id, c.status, c.problem?.code])).toEqual([[a.id, status, problemCode]]);
      // The claim shared the failed statement: rolled back with it, not leased to a worker that never sees it.
      expect(r.jobs).toEqual([]);
      expect((await job(a.id)).status).toBe("running");
      expect((await job(b.id)).status).toBe("queued");
    });
    const retried = await poll(queue, { complete: [{ id: ja!.id, leaseToken: ja!.leaseToken }] });
    expect(retried.completed).toEqual([{ id: a.id, status: 200 }]);
    expect(retried.jobs.map((j) => j.id)).toEqual([b.id]);
    expect((await job(a.id)).status).toBe("succeeded");
  });

  it("one statement finalises a batch and starts another: both batch rows are right", async () => {
    const batch = async (n: number) => {
      const r = await setup.env.http().post("/v1/batches").set("authorization", setup.client)
        .send({ jobs: Array.from({ length: n }, (_, i) => ({ queue: "ack_batches", kind: "k", payload: { i } })) });
      expect(r.status).toBe(201);
      return r.body as { id: string };
    };
    const x = await batch(1);
    const [jx] = (await poll("ack_batches")).jobs;
    const y = await batch(2);
    // Completes x's last job and claims y's first one in the same statement.
    const r = await poll("ack_batches", { complete: [{ id: jx!.id, leaseToken: jx!.leaseToken, result: 1 }] });
    expect(r.completed).toEqual([{ id: jx!.id, status: 200 }]);
    expect(r.jobs).toHaveLength(1);
    const bx = (await setup.env.http().get(`/v1/batches/${x.id}`).set("authorization", setup.client)).body;
    const by = (await setup.env.http().get(`/v1/batches/${y.id}`).set("authorization", setup.client)).body;
    expect([bx.status, bx.counts.succeeded]).toEqual(["succeeded", 1]);
    expect([by.status, by.counts.running, by.counts.queued]).toEqual(["running", 1, 1]);
  });

  it("a failed completion ends the poll's wait, so the setup.worker hears of it while its lease lasts", async () => {
    const a = await submit("ack9");
    const [ja] = (await poll("ack9")).jobs;
    await refusingSuccessOf(a.id, "40P01", async () => {
      const t0 = performance.now();
      const r = await poll("ack9", { waitMs: 20_000, complete: [{ id: ja!.id, leaseToken: ja!.leaseToken }] });
      // Well under the 20 s the poll would otherwise have waited on its empty queue.
      expect(performance.now() - t0).toBeLessThan(10_000);
      expect(r.completed!.map((c) => c.status)).toEqual([503]);
      expect(r.jobs).toEqual([]);
    });
  });

  it("the same item twice is one completion: both answered 200, one event", async () => {
    const a = await submit("ack10", { webhookUrl: "https://example.com/hook" });
    const [ja] = (await poll("ack10")).jobs;
    const item = { id: ja!.id, leaseToken: ja!.leaseToken };
    const r = await poll("ack10", { complete: [item, item] });
    expect(r.completed).toEqual([{ id: a.id, status: 200 }, { id: a.id, status: 200 }]);
    expect(await events(a.id)).toBe(1);
  });

  it("a platform setup.worker acknowledges any tenant's job", async () => {
    const a = await submit("ack11");
    const platform = await setup.env.key("*", "worker");
    const [ja] = (await poll("ack11", { key: platform })).jobs;
    const r = await poll("ack11", { key: platform, complete: [{ id: ja!.id, leaseToken: ja!.leaseToken }] });
    expect(r.completed).toEqual([{ id: a.id, status: 200 }]);
    expect((await job(a.id)).status).toBe("succeeded");
  });

  it("workers that acknowledge with their polls run every job exactly once", async () => {
    const n = 300;
    const ids = new Set<string>();
    for (let i = 0; i < n; i += 100) {
      const r = await setup.env.http().post("/v1/batches").set("authorization", setup.client)
        .send({ jobs: Array.from({ length: Math.min(100, n - i) }, () => ({ queue: "ack7", kind: "k" })) });
      expect(r.status).toBe(201);
    }
    const seen: string[] = [];
    await Promise.all(
      Array.from({ length: 8 }, async (_, w) => {
        let pending: Ack[] = [];
        for (;;) {
          const r = await processNext<Claimed>(setup.env, setup.worker, { queues: ["ack7"], workerId: `w${w}`, max: 1 + (w % 3), complete: pending });
          expect(r.completed!.every((c) => c.status === 200)).toBe(true);
          const jobs = r.jobs;
          if (jobs.length === 0 && pending.length === 0) return;
          for (const j of jobs) seen.push(j.id);
          pending = jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken }));
        }
      }),
    );
    for (const id of seen) ids.add(id);
    expect(seen).toHaveLength(n);
    expect(ids.size).toBe(n);
    const [counts] = await setup.env.c.sql<{ ok: number; other: number }[]>`
      SELECT count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1)::int AS ok,
             count(*) FILTER (WHERE NOT (status = 'succeeded' AND attempts = 1))::int AS other
      FROM jobs WHERE queue = 'ack7'`;
    expect(counts).toEqual({ ok: n, other: 0 });
  });
});
