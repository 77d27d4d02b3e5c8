import { describe, expect, it } from "vitest";
import { claimDirect, submitJob, useTestEnv } from "../helpers/app.js";

// Retry and delete of single jobs (DESIGN.md "Operator control and visibility"), and their races.
const t = useTestEnv("jobs_operator");
const HOOK = "https://example.com/hook";
const svc = () => t.env.c.services.jobs;
const http = (method: "post" | "delete" | "get", path: string, key = t.client) => t.env.http()[method](path).set("authorization", key);

/** n jobs of `queue` ended failed (one attempt, failed by their lease holder). */
async function failedJobs(queue: string, n: number, extra: object = {}): Promise<string[]> {
  for (let i = 0; i < n; i++) await submitJob(t.env, t.client, { queue, kind: "k", maxAttempts: 1, webhookUrl: HOOK, ...extra });
  return failAll(queue, n);
}
async function failAll(queue: string, n: number): Promise<string[]> {
  const ids: string[] = [];
  while (ids.length < n) {
    const got = await claimDirect(t.env, queue, { max: 100 });
    if (got.length === 0) break;
    for (const j of got) {
      const out = await svc().fail(j.id, null, { leaseToken: j.leaseToken!, error: { message: "boom", code: "E" }, retryable: false });
      expect(out.ok).toBe(true);
      ids.push(j.id);
    }
  }
  expect(ids.length).toBe(n);
  return ids;
}
async function completeAll(queue: string): Promise<number> {
  let n = 0;
  for (;;) {
    const got = await claimDirect(t.env, queue, { max: 100 });
    if (got.length === 0) return n;
    for (const j of got) expect((await svc().complete(j.id, null, j.leaseToken!, { ok: true })).ok).toBe(true);
    n += got.length;
  }
}
const events = (subject: string, type: string) =>
  t.env.c.sql<{ generation: number }[]>`SELECT generation FROM webhook_outbox WHERE subject_id = ${subject} AND event_type = ${type}`;

describe("POST /v1/jobs/{id}/retry and DELETE /v1/jobs/{id}", () => {
  it("retries a failed job: queued, attempts reset, a new event at its next finalisation", async () => {
    const [id] = await failedJobs("op_one", 1);
    const r = await http("post", `/v1/jobs/${id}/retry`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body).toMatchObject({ id, status: "queued", attempts: 0, finishedAt: null });
    expect((await http("post", `/v1/jobs/${id}/retry`)).body.code).toBe("not_retryable");
    // Failed again: a second job.failed, not swallowed by the first one's outbox identity.
    await failAll("op_one", 1);
    expect((await events(id!, "job.failed")).map((e) => e.generation).sort()).toEqual([1, 2]);
    expect((await http("post", `/v1/jobs/${id}/retry`)).status).toBe(200);
    expect(await completeAll("op_one")).toBe(1);
    expect(await events(id!, "job.succeeded")).toHaveLength(1);
    await http("post", `/v1/jobs/${id}/retry`).expect(409);
  });

  it("deletes finished jobs only, within the tenant", async () => {
    const [id] = await failedJobs("op_del", 1);
    const other = await t.env.key("other", "client");
    expect((await http("delete", `/v1/jobs/${id}`, other)).status).toBe(404);
    expect((await http("post", `/v1/jobs/${id}/retry`, other)).status).toBe(404);
    const queued = await submitJob<{ id: string }>(t.env, t.client, { queue: "op_del", kind: "k" });
    const busy = await http("delete", `/v1/jobs/${queued.id}`);
    expect(busy.status).toBe(409);
    expect(busy.body.code).toBe("not_finished");
    expect((await http("delete", `/v1/jobs/${id}`)).status).toBe(204);
    expect((await http("get", `/v1/jobs/${id}`)).status).toBe(404);
    expect((await http("delete", `/v1/jobs/${id}`)).status).toBe(404);
  });

  it("a retried job of a finished batch reopens it: exact counts, a second batch.completed", async () => {
    const b = await http("post", "/v1/batches").send({
      jobs: [
        { queue: "op_b", kind: "k", maxAttempts: 1 },
        { queue: "op_b", kind: "k", maxAttempts: 1 },
      ],
      webhookUrl: HOOK,
    });
    expect(b.status, JSON.stringify(b.body)).toBe(201);
    const batchId = b.body.id as string;
    const first = await claimDirect(t.env, "op_b");
    await svc().complete(first[0]!.id, null, first[0]!.leaseToken!, null);
    const [failed] = await failAll("op_b", 1);
    let batch = (await http("get", `/v1/batches/${batchId}`)).body;
    expect(batch.status).toBe("partially_succeeded");
    const r = await http("post", `/v1/jobs/${failed}/retry`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    batch = (await http("get", `/v1/batches/${batchId}`)).body;
    expect(batch).toMatchObject({ status: "running", generation: 2, finishedAt: null });
    expect(batch.counts).toMatchObject({ succeeded: 1, failed: 0, queued: 1 });
    expect(await completeAll("op_b")).toBe(1);
    batch = (await http("get", `/v1/batches/${batchId}`)).body;
    expect(batch).toMatchObject({ status: "succeeded", generation: 2 });
    expect((await events(batchId, "batch.completed")).map((e) => e.generation).sort()).toEqual([1, 2]);
  });
});

/** Runs `trial` for each item, `width` at a time: each trial is a race of its own. */
async function trials<T>(items: T[], width: number, trial: (item: T) => Promise<void>) {
  for (let i = 0; i < items.length; i += width) await Promise.all(items.slice(i, i + width).map(trial));
}
const TRIALS = 200;

describe("races (200 trials each, real connections)", () => {
  it("retry vs retry: one wins, one later event", async () => {
    const ids = await failedJobs("op_rr", TRIALS);
    await trials(ids, 20, async (id) => {
      const outs = await Promise.all([svc().retry(id, "acme"), svc().retry(id, "acme")]);
      expect(outs.filter((o) => o.ok)).toHaveLength(1);
      expect(outs.find((o) => !o.ok)).toMatchObject({ error: "not_retryable" });
    });
    expect(await completeAll("op_rr")).toBe(TRIALS);
    const [ev] = await t.env.c.sql<{ n: number; subjects: number }[]>`
      SELECT count(*)::int AS n, count(DISTINCT subject_id)::int AS subjects FROM webhook_outbox
      WHERE subject_id = ANY(${ids}::uuid[]) AND event_type = 'job.succeeded'`;
    expect(ev).toEqual({ n: TRIALS, subjects: TRIALS });
  });

  it("retry vs delete: one wins; a retried job sends one later event, a deleted one none", async () => {
    const ids = await failedJobs("op_rd", TRIALS);
    let retried = 0;
    await trials(ids, 20, async (id) => {
      const [r, d] = await Promise.all([svc().retry(id, "acme"), svc().remove(id, "acme")]);
      expect(Number(r.ok) + Number(d.ok), JSON.stringify([r, d])).toBe(1);
      if (r.ok) retried++;
      else expect(r.error).toBe("not_found");
      if (!d.ok) expect(d.error).toBe("not_finished");
    });
    expect(await completeAll("op_rd")).toBe(retried);
    const [ev] = await t.env.c.sql<{ n: number; rows: number }[]>`
      SELECT (SELECT count(*)::int FROM webhook_outbox WHERE subject_id = ANY(${ids}::uuid[]) AND event_type = 'job.succeeded') AS n,
             (SELECT count(*)::int FROM jobs WHERE id = ANY(${ids}::uuid[])) AS rows`;
    expect(ev).toEqual({ n: retried, rows: retried });
  });

  it("retry of a batch's job vs the batch's retry: one wins, one later batch.completed, exact counts", async () => {
    const batches: Array<{ batchId: string; jobId: string }> = [];
    for (let i = 0; i < TRIALS; i++) {
      const b = await http("post", "/v1/batches").send({ jobs: [{ queue: "op_rb", kind: "k", maxAttempts: 1 }], webhookUrl: HOOK });
      expect(b.status).toBe(201);
      batches.push({ batchId: b.body.id, jobId: "" });
    }
    const failed = await failAll("op_rb", TRIALS);
    const byBatch = new Map(
      (await t.env.c.sql<{ id: string; batchId: string }[]>`SELECT id, batch_id FROM jobs WHERE id = ANY(${failed}::uuid[])`).map((r) => [
        r.batchId,
        r.id,
      ]),
    );
    for (const b of batches) b.jobId = byBatch.get(b.batchId)!;
    let jobWins = 0;
    await trials(batches, 20, async ({ batchId, jobId }) => {
      const [j, b] = await Promise.all([svc().retry(jobId, "acme"), t.env.c.services.batches.retry(batchId, "acme")]);
      expect(Number(j.ok) + Number(b.ok), JSON.stringify([j, b])).toBe(1);
      if (j.ok) jobWins++;
    });
    expect(await completeAll("op_rb")).toBe(TRIALS);
    const ids = batches.map((b) => b.batchId);
    const rows = await t.env.c.sql<{ status: string; remaining: number; succeededCount: number; failedCount: number; events: number[] }[]>`
      SELECT b.status, b.remaining, b.succeeded_count, b.failed_count,
             (SELECT array_agg(o.generation ORDER BY o.generation) FROM webhook_outbox o
              WHERE o.subject_id = b.id AND o.event_type = 'batch.completed') AS events
      FROM batches b WHERE b.id = ANY(${ids}::uuid[])`;
    for (const r of rows) expect(r).toEqual({ status: "succeeded", remaining: 0, succeededCount: 1, failedCount: 0, events: [1, 2] });
    expect(rows).toHaveLength(TRIALS);
    console.log(`batch-job retry vs batch retry: the job's retry won ${jobWins} of ${TRIALS}`);
  });
});

describe("error history", () => {
  it("keeps the last 20 failed attempts from fail and the reaper, shown by GET and carried by the webhook", async () => {
    const job = await submitJob<{ id: string }>(t.env, t.client, { queue: "op_err", kind: "k", maxAttempts: 30, webhookUrl: HOOK });
    for (let i = 1; i <= 22; i++) {
      const [j] = await claimDirect(t.env, "op_err");
      expect(j?.id).toBe(job.id);
      await svc().fail(j!.id, null, { leaseToken: j!.leaseToken!, error: { message: `boom ${i}`, code: `E${i}` }, retryable: true, retryAfterSeconds: 0 });
    }
    // The 23rd attempt's lease expires: the reaper records it.
    const [j] = await claimDirect(t.env, "op_err");
    await t.env.c.sql`UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = ${j!.id}`;
    await t.env.c.repos.jobs.reapExpired(10);
    const got = (await http("get", `/v1/jobs/${job.id}`)).body;
    expect(got.errors).toHaveLength(20);
    expect(got.errors[0]).toMatchObject({ attempt: 4, code: "E4", message: "boom 4" });
    expect(got.errors[18]).toMatchObject({ attempt: 22, code: "E22", message: "boom 22" });
    expect(got.errors[19]).toMatchObject({ attempt: 23, code: "lease_expired", message: "lease expired" });
    expect(Date.parse(got.errors[19].at)).not.toBeNaN();
    // The final failure's webhook body carries the history too.
    const [k] = await claimDirect(t.env, "op_err");
    await svc().fail(k!.id, null, { leaseToken: k!.leaseToken!, error: { message: "last" }, retryable: false });
    const [ev] = await t.env.c.sql<{ data: { errors: Array<{ message: string; code: string | null }> } }[]>`
      SELECT data FROM webhook_outbox WHERE subject_id = ${job.id} AND event_type = 'job.failed'`;
    const { jobDto, camelize } = await import("../../src/services/representation.js");
    const body = jobDto(camelize(ev!.data as unknown as Record<string, unknown>));
    expect(body.errors).toHaveLength(20);
    expect(body.errors.at(-1)).toMatchObject({ attempt: 24, code: null, message: "last" });
  });
});
