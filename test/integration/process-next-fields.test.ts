// process-next's `fields: "worker"`: a lean answer for workers; without it, the full one, unchanged.
import { describe, expect, it } from "vitest";
import { WORKER_ROW_KEYS } from "../../src/repositories/jobs/rows.js";
import { claimedJobDto, WORKER_FIELDS, workerJobDto } from "../../src/services/representation.js";
import { submitJob, useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("process_next_fields");

const TP = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
const submit = (queue: string, extra: object = {}) =>
  submitJob<{ id: string }>(setup.env, setup.client, { queue, kind: "k", payload: { x: 1, s: "é\u2028\"q\"", n: [1.5, null, true] }, ...extra });
const poll = (body: object) => setup.env.http().post("/v1/process-next").set("authorization", setup.worker).send({ workerId: "w", ...body });
/** The rows as the database holds them now (the claim was their last change). */
const rows = async (ids: string[]) => Promise.all(ids.map(async (id) => (await setup.env.c.repos.jobs.findById(id, null))!));

/** ClaimedJob's keys, in the order today's clients receive them. */
const FULL_KEYS = [
  "id", "tenant", "queue", "kind", "payload", "priority", "groupKey", "runAt", "status", "attempts", "maxAttempts",
  "leaseExpiresAt", "workerId", "cancelRequested", "result", "lastError", "errors", "batchId", "idempotencyKey",
  "webhookUrl", "timeoutSeconds", "deadlineAt", "expiresAt", "dedupeKey", "createdAt", "updatedAt", "startedAt",
  "finishedAt", "version", "scheduleId", "scheduledFor", "dependsOn", "pendingDependencies", "traceparent",
  "tracestate", "tags", "progress", "leaseToken",
];

describe("process-next fields", () => {
  it('fields "worker": each job carries exactly the documented fields, with the full representation\'s values', async () => {
    const a = await submit("pf1", { traceparent: TP, timeoutSeconds: 30 });
    const b = await submit("pf1");
    const r = await poll({ queues: ["pf1"], max: 5, fields: "worker" });
    expect(r.status).toBe(200);
    expect(r.body.jobs.map((j: { id: string }) => j.id).sort()).toEqual([a.id, b.id].sort());
    for (const j of r.body.jobs) expect(Object.keys(j)).toEqual([...WORKER_FIELDS]);
    const full = await rows(r.body.jobs.map((j: { id: string }) => j.id));
    // Byte for byte what the full representation says for those fields.
    expect(r.text).toBe(JSON.stringify({ jobs: full.map(workerJobDto) }));
    for (const [i, row] of full.entries()) {
      const whole = claimedJobDto(row) as Record<string, unknown>;
      expect(r.body.jobs[i]).toEqual(Object.fromEntries(WORKER_FIELDS.map((k) => [k, whole[k]])));
    }
    expect(r.body.jobs.find((j: { id: string }) => j.id === a.id)).toMatchObject({ traceparent: TP, deadlineAt: expect.any(String) });
  });

  it("without fields (or with \"full\") the answer is today's, byte for byte", async () => {
    await submit("pf2");
    await submit("pf2");
    const r = await poll({ queues: ["pf2"], max: 1 });
    expect(r.status).toBe(200);
    expect(Object.keys(r.body.jobs[0])).toEqual(FULL_KEYS);
    expect(r.text).toBe(JSON.stringify({ jobs: (await rows([r.body.jobs[0].id])).map(claimedJobDto) }));
    const f = await poll({ queues: ["pf2"], max: 1, fields: "full" });
    expect(Object.keys(f.body.jobs[0])).toEqual(FULL_KEYS);
    expect(f.text).toBe(JSON.stringify({ jobs: (await rows([f.body.jobs[0].id])).map(claimedJobDto) }));
  });

  it("a worker claim returns only the worker columns, and writes the lease a full claim writes", async () => {
    const j = await submit("pf5");
    const [row] = await setup.env.c.repos.jobs.claimNext({ queues: ["pf5"], tenant: null, workerId: "w5", leaseSeconds: 60, max: 1, fields: "worker" });
    expect(Object.keys(row!).sort()).toEqual([...WORKER_ROW_KEYS].sort());
    const [now] = await rows([j.id]);
    expect(now).toMatchObject({ status: "running", attempts: 1, workerId: "w5", leaseToken: row!.leaseToken, startedAt: row!.startedAt });
    expect(row).toEqual(Object.fromEntries(WORKER_ROW_KEYS.map((k) => [k, now![k]])));
  });

  it("polls asking for either fields at once each get their own (they never share a claim statement)", async () => {
    const n = 24;
    for (let i = 0; i < n * 2; i++) await submit("pf6");
    // Concurrent polls of one filter share statements (coalescing); the fields split them.
    const answers = await Promise.all(Array.from({ length: n }, (_, i) => poll({ queues: ["pf6"], max: 2, fields: i % 2 ? "worker" : "full" })));
    const seen = new Set<string>();
    for (const [i, r] of answers.entries()) {
      expect(r.status).toBe(200);
      expect(r.body.jobs).toHaveLength(2);
      for (const j of r.body.jobs) {
        expect(Object.keys(j)).toEqual(i % 2 ? [...WORKER_FIELDS] : FULL_KEYS);
        seen.add(j.id);
      }
    }
    expect(seen.size).toBe(n * 2);
  });

  it("an unknown fields value is 400 problem+json and leases nothing", async () => {
    const j = await submit("pf3");
    for (const fields of ["lean", "", 1, null]) {
      const r = await poll({ queues: ["pf3"], fields });
      expect(r.status).toBe(400);
      expect(r.headers["content-type"]).toMatch(/application\/problem\+json/);
    }
    const [row] = await rows([j.id]);
    expect(row!.status).toBe("queued");
  });

  it('completions ride a lean poll: answered in completed, the next jobs lean; none leased answers {"jobs":[],…}', async () => {
    const ids = [(await submit("pf4")).id, (await submit("pf4")).id, (await submit("pf4")).id];
    const first = await poll({ queues: ["pf4"], max: 2, fields: "worker" });
    const complete = first.body.jobs.map((j: { id: string; leaseToken: string }) => ({ id: j.id, leaseToken: j.leaseToken, result: { ok: j.id } }));
    const second = await poll({ queues: ["pf4"], max: 2, fields: "worker", complete });
    expect(second.status).toBe(200);
    expect(second.body.completed).toEqual(complete.map((c: { id: string }) => ({ id: c.id, status: 200 })));
    expect(second.body.jobs).toHaveLength(1);
    expect(Object.keys(second.body.jobs[0])).toEqual([...WORKER_FIELDS]);
    const done = await rows(complete.map((c: { id: string }) => c.id));
    expect(done.map((d) => [d.status, d.result])).toEqual(complete.map((c: { id: string }) => ["succeeded", { ok: c.id }]));
    const last = second.body.jobs[0];
    const third = await poll({ queues: ["pf4"], max: 2, fields: "worker", complete: [{ id: last.id, leaseToken: last.leaseToken }] });
    expect(third.text).toBe(JSON.stringify({ jobs: [], completed: [{ id: last.id, status: 200 }] }));
    expect(new Set([...complete.map((c: { id: string }) => c.id), last.id])).toEqual(new Set(ids));
  });
});
