import postgres from "postgres";
import { beforeAll, describe, expect, it } from "vitest";
import { type JobRow, jobsRepository } from "../../src/repositories/jobs.js";
import { claimDirect, processNext, useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("batches_races");
beforeAll(async () => {
  // Test-only instrumentation: every change of a batch's status, as committed.
  await setup.env.c.sql.unsafe(`
    CREATE TABLE batch_status_log (batch_id uuid, from_status text, to_status text, generation int);
    CREATE FUNCTION log_batch_status() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF NEW.status IS DISTINCT FROM OLD.status THEN
        INSERT INTO batch_status_log VALUES (NEW.id, OLD.status, NEW.status, NEW.generation);
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER batch_status_log AFTER UPDATE ON batches FOR EACH ROW EXECUTE FUNCTION log_batch_status();`);
});

const TERMINAL = ["succeeded", "failed", "partially_succeeded", "cancelled"];
const jobsOf = (n: number, queue: string, extra: object = {}) =>
  Array.from({ length: n }, (_, i) => ({ queue, kind: "k", payload: { i, ...extra } }));
const post = (path: string, body?: object) => {
  const r = setup.env.http().post(path).set("authorization", setup.client);
  return body === undefined ? r : r.send(body);
};
const svc = () => setup.env.c.services.jobs;
const claim = (queue: string, max = 10) => claimDirect(setup.env, queue, { max });

async function until(what: string, cond: () => Promise<boolean>, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function batchRow(id: string) {
  const [b] = await setup.env.c.sql<{ status: string; total: number; remaining: number; succeededCount: number; failedCount: number; cancelledCount: number; generation: number }[]>`
    SELECT * FROM batches WHERE id = ${id}`;
  return b!;
}
const jobStatusCounts = async (id: string) => {
  const rows = await setup.env.c.sql<{ status: string; n: number }[]>`
    SELECT status, count(*)::int AS n FROM jobs WHERE batch_id = ${id} GROUP BY status`;
  return Object.fromEntries(rows.map((r) => [r.status, r.n]));
};
const terminalTransitions = (id: string) =>
  setup.env.c.sql<{ toStatus: string; generation: number }[]>`
    SELECT to_status, generation FROM batch_status_log
    WHERE batch_id = ${id} AND to_status IN ${setup.env.c.sql(TERMINAL)} ORDER BY generation`;
const completedEvents = (id: string) =>
  setup.env.c.sql<{ generation: number; data: { status: string; generation: number } }[]>`
    SELECT generation, data FROM webhook_outbox WHERE subject_id = ${id} AND event_type = 'batch.completed' ORDER BY generation`;

/**
 * A worker that runs until `done()`: claims a few jobs, then succeeds or
 * fails each (non-retryable unless told otherwise), sometimes through the
 * multi-complete. Returns what it did, by job id.
 */
async function runWorker(queue: string, o: { done: () => boolean; pFail: number; retryable?: boolean; onClaim?: (rows: JobRow[], startedAt: number) => void }) {
  const outcomes = new Map<string, "succeeded" | "failed" | "retried">();
  while (!o.done()) {
    const startedAt = Date.now();
    const rows = await claim(queue, 1 + Math.floor(Math.random() * 5));
    o.onClaim?.(rows, startedAt);
    if (rows.length === 0) {
      await new Promise((r) => setTimeout(r, 5));
      continue;
    }
    const toComplete: JobRow[] = [];
    for (const r of rows) {
      if (Math.random() < o.pFail) {
        const out = await svc().fail(r.id, null, {
          leaseToken: r.leaseToken!,
          error: { message: "boom" },
          retryable: o.retryable ?? false,
          retryAfterSeconds: 0,
        });
        expect(out.ok).toBe(true);
        if (out.ok) outcomes.set(r.id, out.value.status === "queued" ? "retried" : "failed");
      } else toComplete.push(r);
    }
    if (toComplete.length > 1 && Math.random() < 0.5) {
      const out = await svc().completeMany(null, toComplete.map((r) => ({ id: r.id, leaseToken: r.leaseToken! })));
      for (const { id, outcome } of out) {
        expect(outcome.ok).toBe(true);
        outcomes.set(id, "succeeded");
      }
    } else {
      for (const r of toComplete) {
        const out = await svc().complete(r.id, null, r.leaseToken!, { ok: true });
        expect(out.ok).toBe(true);
        outcomes.set(r.id, "succeeded");
      }
    }
  }
  return outcomes;
}

describe("batch races (real PostgreSQL)", () => {
  it("claims none of a preparing batch's jobs under 8 tight claimers, then each exactly once after seal", async () => {
    const queue = "prep_q";
    const open = await post("/v1/batches", { jobs: jobsOf(10, queue), seal: false });
    expect(open.status).toBe(201);
    const id = open.body.id as string;
    let sealRequested = false;
    let stop = false;
    const claimedBeforeSeal: string[] = [];
    const claimed: string[] = [];
    const claimers = Array.from({ length: 8 }, async () => {
      while (!stop) {
        const before = sealRequested;
        const rows = await claim(queue, 20);
        for (const r of rows) (before ? claimed : claimedBeforeSeal).push(r.id);
      }
    });
    // Adds in many requests, four at a time, while the claimers spin.
    for (let round = 0; round < 10; round++) {
      const adds = await Promise.all(Array.from({ length: 4 }, (_, k) => post(`/v1/batches/${id}/jobs`, { jobs: jobsOf(25, queue, { round, k }) })));
      for (const a of adds) expect(a.status).toBe(201);
    }
    const ids = await setup.env.c.sql<{ id: string }[]>`SELECT id FROM jobs WHERE batch_id = ${id}`;
    expect(ids).toHaveLength(1010);
    expect(claimedBeforeSeal).toEqual([]);
    sealRequested = true;
    const sealed = await post(`/v1/batches/${id}/seal`);
    expect(sealed.status).toBe(200);
    expect(sealed.body.total).toBe(1010);
    await until("all jobs claimed", async () => claimed.length >= 1010 || claimedBeforeSeal.length > 0);
    stop = true;
    await Promise.all(claimers);
    expect(claimedBeforeSeal).toEqual([]);
    expect(claimed).toHaveLength(1010);
    expect(new Set(claimed).size).toBe(1010);
    const [attempts] = await setup.env.c.sql`SELECT min(attempts)::int AS lo, max(attempts)::int AS hi FROM jobs WHERE batch_id = ${id}`;
    expect(attempts).toEqual({ lo: 1, hi: 1 });
    expect((await batchRow(id)).status).toBe("running");
  });

  it("a preparing batch's job that carries a claimable tag (as an older release inserted it) is claimed by no path until the seal", async () => {
    // Open batches' jobs now carry a tag outside the claim index; the claim's own check of the
    // batch's status is what keeps out those an older release tagged as plain jobs.
    const queue = "legacy_prep_q";
    const open = await post("/v1/batches", { jobs: jobsOf(3, queue), seal: false });
    expect(open.status).toBe(201);
    const id = open.body.id as string;
    const tagged = await setup.env.c.sql`UPDATE jobs SET fair_tag = 0 WHERE batch_id = ${id} RETURNING id`;
    expect(tagged).toHaveLength(3);
    const worker = await setup.env.key("acme", "worker");

    expect(await claim(queue, 10)).toEqual([]);
    // Several polls sharing one statement (the multi-taker claim).
    const shared = await Promise.all(
      Array.from({ length: 4 }, () =>
        svc().claimNext({ queues: [queue], scope: null, workerId: "w", leaseSeconds: 60, max: 2, waitMs: 0, shared: true }),
      ),
    );
    expect(shared.flat()).toEqual([]);
    const byId = await setup.env.http().post(`/v1/jobs/${tagged[0]!.id}/claim`).set("authorization", worker).send({ workerId: "w" });
    expect(byId.status).toBe(409);
    expect((await processNext(setup.env, worker, { queues: [queue], max: 10 })).jobs).toEqual([]);

    expect((await post(`/v1/batches/${id}/seal`)).status).toBe(200);
    const after = await claim(queue, 10);
    expect(after.map((r) => r.id).sort()).toEqual(tagged.map((r) => r.id).sort());
  });

  it("the last two jobs of a batch completed at once on two connections: the batch finalises once (200 trials)", async () => {
    // Two connections of their own, so the two completions really overlap in the database
    // (the service shares one statement among the completions of one process).
    const pools = [0, 1].map(() => postgres(setup.env.url, { max: 1, transform: postgres.camel, onnotice: () => {} }));
    try {
      const repos = pools.map((p) => jobsRepository(p));
      const ids: string[] = [];
      for (let t = 0; t < 200; t++) {
        const queue = `last_two_${t}`;
        const b = await post("/v1/batches", { jobs: jobsOf(2, queue), webhookUrl: "https://example.com/batch-hook" });
        expect(b.status).toBe(201);
        ids.push(b.body.id);
        const rows = await claim(queue, 2);
        expect(rows).toHaveLength(2);
        const done = await Promise.all(rows.map((r, i) => repos[i]!.completeIfLeased(r.id, r.leaseToken!, { i }, null)));
        expect(done.every((d) => d?.status === "succeeded")).toBe(true);
      }
      const batches = await setup.env.c.sql<{ status: string; n: number }[]>`
        SELECT status::text, count(*)::int AS n FROM batches WHERE id = ANY(${ids}) GROUP BY status`;
      expect(batches).toEqual([{ status: "succeeded", n: 200 }]);
      const [events] = await setup.env.c.sql<[{ n: number; subjects: number }]>`
        SELECT count(*)::int AS n, count(DISTINCT subject_id)::int AS subjects FROM webhook_outbox
        WHERE event_type = 'batch.completed' AND subject_id = ANY(${ids})`;
      expect(events).toEqual({ n: 200, subjects: 200 });
    } finally {
      await Promise.all(pools.map((p) => p.end({ timeout: 5 })));
    }
  });

  it("seal racing adds: every acknowledged add is whole in the batch, the seal saw all of them, later adds are 409", async () => {
    const queue = "race_q";
    const trials = 25;
    let lateAdds = 0;
    for (let t = 0; t < trials; t++) {
      const open = await post("/v1/batches", { jobs: [], seal: false });
      const id = open.body.id as string;
      const addCount = 6;
      const sealAfter = Math.floor(Math.random() * addCount);
      const adds: Array<Promise<{ status: number }>> = [];
      let seal: Promise<{ status: number; body: { total: number; status: string } }> | null = null;
      for (let k = 0; k < addCount; k++) {
        if (k === sealAfter) seal = post(`/v1/batches/${id}/seal`).then((r) => r);
        adds.push(post(`/v1/batches/${id}/jobs`, { jobs: jobsOf(3, queue, { trial: t, add: k }) }).then((r) => r));
      }
      const [sealed, results] = await Promise.all([seal!, Promise.all(adds)]);
      expect(sealed.status).toBe(200);
      for (const r of results) expect([201, 409]).toContain(r.status);
      const accepted = results.flatMap((r, k) => (r.status === 201 ? [k] : []));
      lateAdds += addCount - accepted.length;
      const perAdd = await setup.env.c.sql<{ add: number; n: number }[]>`
        SELECT (payload->>'add')::int AS add, count(*)::int AS n FROM jobs WHERE batch_id = ${id} GROUP BY 1 ORDER BY 1`;
      // Whole adds only, and exactly the acknowledged ones.
      expect(perAdd.map((r) => r.add)).toEqual(accepted);
      for (const r of perAdd) expect(r.n).toBe(3);
      const b = await batchRow(id);
      expect(b.total).toBe(accepted.length * 3);
      expect(b.remaining).toBe(b.total);
      // The seal's answer already counted every add that will ever succeed.
      expect(sealed.body.total).toBe(b.total);
      const after = await post(`/v1/batches/${id}/jobs`, { jobs: jobsOf(1, queue) });
      expect(after.status).toBe(409);
      const got = await claim(queue, 100);
      expect(got.filter((r) => r.batchId === id)).toHaveLength(b.total);
    }
    // The race was real: some adds lost to the seal, some won.
    expect(lateAdds).toBeGreaterThan(0);
    expect(lateAdds).toBeLessThan(trials * 6);
  });

  it("1,000 jobs finished by 16 workers: one terminal transition, one batch.completed event, exact counts; retry reruns only the failed", async () => {
    const queue = "big_q";
    const res = await post("/v1/batches", { jobs: jobsOf(1000, queue), webhookUrl: "https://example.com/batch-hook" });
    expect(res.status).toBe(201);
    const id = res.body.id as string;
    let finished = false;
    const watcher = until("batch 1 terminal", async () => {
      finished = TERMINAL.includes((await batchRow(id)).status);
      return finished;
    }).finally(() => {
      finished = true;
    });
    const workers = Array.from({ length: 16 }, () => runWorker(queue, { done: () => finished, pFail: 0.3 }));
    await watcher;
    const outcomes = new Map<string, string>();
    for (const w of await Promise.all(workers)) for (const [k, v] of w) outcomes.set(k, v);
    expect(outcomes.size).toBe(1000);
    const failedIds = [...outcomes].filter(([, v]) => v === "failed").map(([k]) => k);
    const succeeded = 1000 - failedIds.length;
    expect(failedIds.length).toBeGreaterThan(0);
    expect(succeeded).toBeGreaterThan(0);

    const b1 = await batchRow(id);
    expect(b1).toMatchObject({ status: "partially_succeeded", remaining: 0, succeededCount: succeeded, failedCount: failedIds.length, cancelledCount: 0 });
    expect(await jobStatusCounts(id)).toEqual({ succeeded, failed: failedIds.length });
    const got = await setup.env.http().get(`/v1/batches/${id}`).set("authorization", setup.client);
    expect(got.body.counts).toEqual({ queued: 0, running: 0, succeeded, failed: failedIds.length, cancelled: 0, waiting: 0 });
    expect(await terminalTransitions(id)).toEqual([{ toStatus: "partially_succeeded", generation: 1 }]);
    const ev1 = await completedEvents(id);
    expect(ev1).toHaveLength(1);
    expect(ev1[0]).toMatchObject({ generation: 1, data: { status: "partially_succeeded" } });

    // Concurrent retries: exactly one wins.
    const retries = await Promise.all(Array.from({ length: 4 }, () => post(`/v1/batches/${id}/retry`)));
    expect(retries.map((r) => r.status).sort()).toEqual([200, 409, 409, 409]);
    const won = retries.find((r) => r.status === 200)!;
    expect(won.body).toMatchObject({
      status: "pending",
      generation: 2,
      counts: { queued: failedIds.length, running: 0, succeeded, failed: 0, cancelled: 0 },
    });
    const requeued = await setup.env.c.sql`
      SELECT count(*)::int AS n, max(attempts)::int AS attempts, min(generation)::int AS g, bool_and(lease_token IS NULL AND finished_at IS NULL) AS clean
      FROM jobs WHERE batch_id = ${id} AND status = 'queued'`;
    expect(requeued[0]).toEqual({ n: failedIds.length, attempts: 0, g: 2, clean: true });

    finished = false;
    const watcher2 = until("batch 2 terminal", async () => {
      finished = TERMINAL.includes((await batchRow(id)).status);
      return finished;
    }).finally(() => {
      finished = true;
    });
    const workers2 = Array.from({ length: 16 }, () => runWorker(queue, { done: () => finished, pFail: 0 }));
    await watcher2;
    const rerun = new Set<string>();
    for (const w of await Promise.all(workers2)) for (const k of w.keys()) rerun.add(k);
    expect([...rerun].sort()).toEqual([...failedIds].sort());

    expect(await batchRow(id)).toMatchObject({ status: "succeeded", generation: 2, remaining: 0, succeededCount: 1000, failedCount: 0 });
    expect(await terminalTransitions(id)).toEqual([
      { toStatus: "partially_succeeded", generation: 1 },
      { toStatus: "succeeded", generation: 2 },
    ]);
    const ev2 = await completedEvents(id);
    expect(ev2).toHaveLength(2);
    expect(ev2[1]).toMatchObject({ generation: 2, data: { status: "succeeded", generation: 2 } });
  });

  it("cancel of an open batch racing adds and a seal: nothing stays claimable, one completion, adds whole or refused", async () => {
    const queue = "open_cancel_q";
    for (let t = 0; t < 15; t++) {
      const open = await post("/v1/batches", { jobs: jobsOf(2, queue), seal: false, webhookUrl: "https://example.com/h" });
      const id = open.body.id as string;
      const ops: Array<Promise<{ status: number; kind: string }>> = [];
      const cancelAt = Math.floor(Math.random() * 5);
      for (let k = 0; k < 5; k++) {
        if (k === cancelAt) ops.push(post(`/v1/batches/${id}/cancel`).then((r) => ({ status: r.status, kind: "cancel" })));
        if (k === 2) ops.push(post(`/v1/batches/${id}/seal`).then((r) => ({ status: r.status, kind: "seal" })));
        ops.push(post(`/v1/batches/${id}/jobs`, { jobs: jobsOf(3, queue, { add: k }) }).then((r) => ({ status: r.status, kind: "add" })));
      }
      const results = await Promise.all(ops);
      expect(results.find((r) => r.kind === "cancel")!.status).toBe(200);
      expect([200, 409]).toContain(results.find((r) => r.kind === "seal")!.status);
      const adds = results.filter((r) => r.kind === "add");
      for (const a of adds) expect([201, 409]).toContain(a.status);
      const accepted = adds.filter((a) => a.status === 201).length;
      const b = await batchRow(id);
      expect(b).toMatchObject({ status: "cancelled", remaining: 0, total: 2 + 3 * accepted, cancelledCount: 2 + 3 * accepted });
      expect(await jobStatusCounts(id)).toEqual({ cancelled: 2 + 3 * accepted });
      expect(await terminalTransitions(id)).toEqual([{ toStatus: "cancelled", generation: 1 }]);
      expect(await completedEvents(id)).toHaveLength(1);
    }
    expect(await claim(queue, 100)).toEqual([]);
  });

  it("wakes long-polling claimers of the batch's queues on seal and on retry", async () => {
    const woken: string[] = [];
    const notify = setup.env.c.notifier.notify;
    setup.env.c.notifier.notify = (q: string) => {
      woken.push(q);
      notify(q);
    };
    try {
      const open = await post("/v1/batches", { jobs: [...jobsOf(1, "wake_a"), ...jobsOf(1, "wake_b")], seal: false });
      expect(woken).toEqual([]);
      await post(`/v1/batches/${open.body.id}/seal`);
      expect(woken.sort()).toEqual(["wake_a", "wake_b"]);
      for (const r of [...(await claim("wake_a")), ...(await claim("wake_b"))])
        await svc().fail(r.id, null, { leaseToken: r.leaseToken!, error: { message: "x" }, retryable: false });
      // (The claims' promotion of the sealed jobs notified their queues too.)
      woken.length = 0;
      expect((await post(`/v1/batches/${open.body.id}/retry`)).status).toBe(200);
      expect(woken.sort()).toEqual(["wake_a", "wake_b"]);
    } finally {
      setup.env.c.notifier.notify = notify;
    }
  });

  it("cancel of a running batch: no queued job of it is claimed afterwards; it ends cancelled once", async () => {
    const queue = "cancel_q";
    const res = await post("/v1/batches", { jobs: jobsOf(400, queue), webhookUrl: "https://example.com/batch-hook" });
    const id = res.body.id as string;
    let cancelledAt = Number.POSITIVE_INFINITY;
    let stop = false;
    const late: string[] = [];
    const workers = Array.from({ length: 8 }, () =>
      runWorker(queue, {
        done: () => stop,
        pFail: 0.5,
        // Failed jobs come straight back as queued: jobs keep moving between queued and running while the cancel runs.
        retryable: true,
        onClaim: (rows, startedAt) => {
          if (startedAt > cancelledAt) late.push(...rows.filter((r) => r.batchId === id).map((r) => r.id));
        },
      }),
    );
    let cancelled: Awaited<ReturnType<typeof post>>;
    try {
      await until("some progress", async () => ((await jobStatusCounts(id)).succeeded ?? 0) >= 60);
      cancelled = await post(`/v1/batches/${id}/cancel`);
      cancelledAt = Date.now();
      // Running jobs finish (succeed, or fail into cancelled); then the batch is done.
      await until("batch terminal", async () => TERMINAL.includes((await batchRow(id)).status), 30_000);
    } finally {
      stop = true;
      await Promise.all(workers);
    }
    expect(cancelled.status).toBe(200);
    expect(cancelled.body.cancelRequested).toBe(true);
    expect(cancelled.body.counts.queued).toBe(0);
    expect(late).toEqual([]);
    const counts = await jobStatusCounts(id);
    expect(counts.queued ?? 0).toBe(0);
    expect(counts.running ?? 0).toBe(0);
    const b = await batchRow(id);
    expect(b).toMatchObject({ status: "cancelled", remaining: 0, succeededCount: counts.succeeded ?? 0, cancelledCount: counts.cancelled ?? 0 });
    expect(await terminalTransitions(id)).toEqual([{ toStatus: "cancelled", generation: 1 }]);
    expect(await completedEvents(id)).toHaveLength(1);
    expect((await post(`/v1/batches/${id}/cancel`)).status).toBe(409);
  });
});
