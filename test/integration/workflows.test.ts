import postgres from "postgres";
import { describe, expect, it } from "vitest";
import { FINALISE_TAIL_SQL } from "../../src/repositories/jobs/finalise.js";
import { cascadeOnce } from "../../src/worker/cascade.js";
import { claimDirect, submitJob, useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

// Workflows (DESIGN.md "Workflows (dependencies)", docs/workflows.md): dependsOn, the waiting
// state, release and cancellation by the statement that finishes the last parent.
const t = useTestEnv("workflows");
const HOOK = "https://example.com/hook";
const svc = () => t.env.c.services.jobs;
const http = (method: "post" | "get", path: string, key = t.client) => t.env.http()[method](path).set("authorization", key);
type Job = { id: string; status: string; pendingDependencies: number; lastError: { code?: string } | null; dependsOn: unknown };

const submit = (body: object) => submitJob<Job>(t.env, t.client, { kind: "k", ...body });
const get = async (id: string) => (await http("get", `/v1/jobs/${id}`)).body as Job;
const claim = (queue: string) => claimDirect(t.env, queue);
async function finishOne(queue: string, how: "complete" | "fail") {
  const [j] = await claim(queue);
  expect(j, `a job of ${queue} to ${how}`).toBeDefined();
  const out =
    how === "complete"
      ? await svc().complete(j!.id, null, j!.leaseToken!, { ok: true })
      : await svc().fail(j!.id, null, { leaseToken: j!.leaseToken!, error: { message: "boom" }, retryable: false });
  expect(out.ok).toBe(true);
  return j!.id;
}
const events = (subject: string, type: string) =>
  t.env.c.sql`SELECT 1 FROM webhook_outbox WHERE subject_id = ${subject} AND event_type = ${type}`.then((r) => r.length);

describe("dependsOn", () => {
  it("a three-step pipeline: each step waits, then is released by its parent's completion", async () => {
    const a = await submit({ queue: "wf_a" });
    const b = await submit({ queue: "wf_b", dependsOn: { jobs: [a.id] } });
    const c = await submit({ queue: "wf_c", dependsOn: { jobs: [b.id] } });
    expect(b).toMatchObject({ status: "waiting", pendingDependencies: 1, dependsOn: { jobs: [a.id], batches: [] } });
    expect(await claim("wf_b")).toEqual([]);
    expect((await svc().claim(b.id, null, { workerId: "w", leaseSeconds: 60 })).ok).toBe(false);
    await finishOne("wf_a", "complete");
    expect(await get(b.id)).toMatchObject({ status: "queued", pendingDependencies: 0 });
    expect((await get(c.id)).status).toBe("waiting");
    await finishOne("wf_b", "complete");
    await finishOne("wf_c", "complete");
    expect((await get(c.id)).status).toBe("succeeded");
    const deps = await http("get", `/v1/jobs/${a.id}/dependents`);
    expect(deps.status).toBe(200);
    expect(deps.body.items.map((j: Job) => j.id)).toEqual([b.id]);
  });

  it("a failed parent cancels its dependents (dependency_failed) with their job.cancelled events", async () => {
    const a = await submit({ queue: "wf_f", maxAttempts: 1 });
    const b = await submit({ queue: "wf_f2", dependsOn: { jobs: [a.id] }, webhookUrl: HOOK });
    const c = await submit({ queue: "wf_f2", dependsOn: { jobs: [a.id] }, webhookUrl: HOOK });
    await finishOne("wf_f", "fail");
    for (const id of [b.id, c.id]) {
      expect(await get(id)).toMatchObject({ status: "cancelled", lastError: { code: "dependency_failed" } });
      expect(await events(id, "job.cancelled")).toBe(1);
    }
  });

  it("a submit whose parent already failed answers 201 with the job cancelled; one already succeeded, queued", async () => {
    const a = await submit({ queue: "wf_pre", maxAttempts: 1 });
    await finishOne("wf_pre", "fail");
    const b = await submit({ queue: "wf_pre2", dependsOn: { jobs: [a.id] }, webhookUrl: HOOK });
    expect(b).toMatchObject({ status: "cancelled", lastError: { code: "dependency_failed" }, pendingDependencies: 0 });
    expect(await events(b.id, "job.cancelled")).toBe(1);
    const ok = await submit({ queue: "wf_pre3" });
    await finishOne("wf_pre3", "complete");
    const d = await submit({ queue: "wf_pre4", dependsOn: { jobs: [ok.id] } });
    expect(d).toMatchObject({ status: "queued", pendingDependencies: 0 });
    expect((await claim("wf_pre4")).map((j) => j.id)).toEqual([d.id]);
  });

  it("validates parents: 404 for a missing or another tenant's parent, 400 past 100, nothing written", async () => {
    const other = await t.env.key("other", "client");
    const theirs = await submitJob<Job>(t.env, other, { queue: "wf_v", kind: "k" });
    const missing = "01900000-0000-7000-8000-000000000000";
    for (const dependsOn of [{ jobs: [missing] }, { jobs: [theirs.id] }, { batches: [missing] }]) {
      const r = await http("post", "/v1/jobs").send({ queue: "wf_v", kind: "k", dependsOn });
      expect(r.status, JSON.stringify(r.body)).toBe(404);
      expect(r.headers["content-type"]).toContain("application/problem+json");
    }
    const many = Array.from({ length: 101 }, (_, i) => `01900000-0000-7000-8000-${String(i).padStart(12, "0")}`);
    expect((await http("post", "/v1/jobs").send({ queue: "wf_v", kind: "k", dependsOn: { jobs: many.slice(0, 60), batches: many.slice(60) } })).status).toBe(400);
    const { n } = (await t.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'wf_v' AND tenant = 'acme'`)[0]!;
    expect(n).toBe(0);
  });

  it("fan-out/fan-in: a job waiting on a batch is released when the batch succeeds; jobs inside a batch may wait too", async () => {
    const first = await submit({ queue: "wf_fan0" });
    const r = await http("post", "/v1/batches").send({
      jobs: [
        { queue: "wf_fan", kind: "k", dependsOn: { jobs: [first.id] } },
        { queue: "wf_fan", kind: "k", dependsOn: { jobs: [first.id] } },
      ],
    });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.body.counts.waiting).toBe(2);
    const report = await submit({ queue: "wf_fanin", dependsOn: { batches: [r.body.id] } });
    expect(report.status).toBe("waiting");
    await finishOne("wf_fan0", "complete");
    await finishOne("wf_fan", "complete");
    expect((await get(report.id)).status).toBe("waiting");
    await finishOne("wf_fan", "complete");
    expect((await http("get", `/v1/batches/${r.body.id}`)).body.status).toBe("succeeded");
    expect((await get(report.id)).status).toBe("queued");
  });

  it("a batch that does not succeed cancels its dependents", async () => {
    const r = await http("post", "/v1/batches").send({ jobs: [{ queue: "wf_bf", kind: "k", maxAttempts: 1 }] });
    const report = await submit({ queue: "wf_bf2", dependsOn: { batches: [r.body.id] } });
    await finishOne("wf_bf", "fail");
    expect(await get(report.id)).toMatchObject({ status: "cancelled", lastError: { code: "dependency_failed" } });
  });

  it("cancelling a waiting job cancels its dependents; a batch cancel takes its waiting jobs", async () => {
    const a = await submit({ queue: "wf_c0" });
    const b = await submit({ queue: "wf_c1", dependsOn: { jobs: [a.id] } });
    const c = await submit({ queue: "wf_c1", dependsOn: { jobs: [b.id] } });
    expect((await http("post", `/v1/jobs/${b.id}/cancel`)).body.status).toBe("cancelled");
    expect(await get(c.id)).toMatchObject({ status: "cancelled", lastError: { code: "dependency_failed" } });
    const r = await http("post", "/v1/batches").send({ jobs: [{ queue: "wf_c2", kind: "k", dependsOn: { jobs: [a.id] } }] });
    const cancelled = await http("post", `/v1/batches/${r.body.id}/cancel`);
    expect(cancelled.status).toBe(200);
    expect((await http("get", `/v1/batches/${r.body.id}`)).body).toMatchObject({ status: "cancelled", counts: { cancelled: 1, waiting: 0 } });
  });

  it("the reaper's final lease expiry and an expiry cancel dependents too (the trigger fires on every terminal write)", async () => {
    const p = await submit({ queue: "wf_reap", maxAttempts: 1 });
    const b = await submit({ queue: "wf_reap2", dependsOn: { jobs: [p.id] } });
    await svc().claimNext({ queues: ["wf_reap"], scope: null, workerId: "w", leaseSeconds: 1, max: 1, waitMs: 0 });
    await t.env.c.sql`UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = ${p.id}`;
    await t.env.c.services.maintenance.reapOnce();
    expect((await get(p.id)).status).toBe("failed");
    expect(await get(b.id)).toMatchObject({ status: "cancelled", lastError: { code: "dependency_failed" } });
    const e = await submit({ queue: "wf_exp", ttlSeconds: 1 });
    const f = await submit({ queue: "wf_exp2", dependsOn: { jobs: [e.id] } });
    await t.env.c.sql`UPDATE jobs SET expires_at = now() - interval '1 second' WHERE id = ${e.id}`;
    await t.env.c.services.maintenance.reapOnce();
    expect((await get(f.id)).status).toBe("cancelled");
  });

  it("a chain of 1,000: the cancel answers at once, the cascade finishes within seconds outside it", async () => {
    const root = await submit({ queue: "wf_chain0" });
    const ids = [root.id];
    // Written as a submit with dependsOn would: each parent marked has_dependents.
    await t.env.c.sql.begin(async (tx) => {
      await tx`UPDATE jobs SET has_dependents = true WHERE id = ${root.id}`;
      for (let i = 1; i < 1000; i++) {
        const [r] = await tx<{ id: string }[]>`
          INSERT INTO jobs (tenant, queue, kind, payload, status, pending_dependencies, depends_on, fair_tag, has_dependents)
          VALUES ('acme', 'wf_chain', 'k', '{}', 'waiting', 1, ${JSON.stringify({ jobs: [ids[i - 1]], batches: [] })}::text::jsonb, ${2 ** 52}, ${i < 999})
          RETURNING id`;
        await tx`INSERT INTO job_dependencies (parent_id, parent_is_batch, child_id) VALUES (${ids[i - 1]!}, false, ${r!.id})`;
        ids.push(r!.id);
      }
    });
    const started = Date.now();
    expect((await http("post", `/v1/jobs/${root.id}/cancel`)).status).toBe(200);
    const requestMs = Date.now() - started;
    // The request took its few bounded steps; the worker's duty does the rest.
    for (let i = 0; i < 100 && (await cascadeOnce(t.env.c)) > 0; i++);
    const { n } = (await t.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'wf_chain' AND status = 'cancelled'`)[0]!;
    expect(n).toBe(999);
    expect((await get(ids[999]!)).lastError?.code).toBe("dependency_failed");
    const { left } = (await t.env.c.sql<{ left: number }[]>`SELECT count(*)::int AS left FROM dependency_cascade`)[0]!;
    expect(left).toBe(0);
    console.log(`chain of 1000: cancel request ${requestMs} ms, cascade done ${Date.now() - started} ms after it`);
  }, 180_000);

  it("a release wakes a long poll on the dependent's queue", async () => {
    const a = await submit({ queue: "wf_lp0" });
    const b = await submit({ queue: "wf_lp", dependsOn: { jobs: [a.id] } });
    // Another process's view: the NOTIFY the releasing statement sends on commit.
    const listener = postgres(t.env.url, { max: 1, onnotice: () => {} });
    const heard: string[] = [];
    await listener.listen("jobline_jobs", (p) => heard.push(p));
    try {
      await finishOne("wf_lp0", "complete");
      // No poll of wf_lp ran, so no promotion announced it: this NOTIFY is the release's.
      await until("the release's NOTIFY", () => (heard.includes("wf_lp") ? true : undefined), 10_000);
      const poll = svc().claimNext({ queues: ["wf_lp"], scope: null, workerId: "w", leaseSeconds: 60, max: 1, waitMs: 20_000 });
      expect((await poll).map((j) => j.id)).toEqual([b.id]);
    } finally {
      await listener.end();
    }
  });

  it("the resolution function's copy of the finalisation tail is the code's", async () => {
    const { def } = (await t.env.c.sql<{ def: string }[]>`SELECT pg_get_functiondef('jobline_resolve_dependents'::regproc) AS def`)[0]!;
    const norm = (s: string) => s.replace(/\s+/g, " ").trim();
    expect(norm(def)).toContain(norm(FINALISE_TAIL_SQL));
  });
});
