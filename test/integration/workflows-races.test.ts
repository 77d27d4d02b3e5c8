import { describe, expect, it } from "vitest";
import type { JobRow } from "../../src/repositories/jobs.js";
import { claimDirect, submitDirect, useTestEnv } from "../helpers/app.js";

// Workflows under races, against real PostgreSQL and many pool connections (issue 28 point 3):
// 200 trials each, run 10 at a time. A dependent released twice or never is the seeds' bug class.
const t = useTestEnv("workflows_races", { JOBLINE_DB_POOL_MAX: 40 });
const HOOK = "https://example.com/hook";
const TRIALS = 200;
const AT_ONCE = 10;
const svc = () => t.env.c.services.jobs;

async function trials(run: (i: number) => Promise<void>) {
  for (let i = 0; i < TRIALS; i += AT_ONCE) await Promise.all(Array.from({ length: AT_ONCE }, (_, k) => run(i + k)));
}
const submit = (queue: string, extra: object = {}) => submitDirect(t.env, "acme", { queue, kind: "k", payload: {}, ...extra });
/** Submits a job of its own queue and claims it: running, ready to be finished. */
async function running(queue: string, extra: object = {}) {
  const job = await submit(queue, extra);
  const out = await svc().claim(job.id, null, { workerId: "w", leaseSeconds: 60 });
  if (!out.ok) throw new Error(JSON.stringify(out));
  return out.value;
}
/** Its own statement on its own pool connection (`q`: not coalesced with concurrent completes). */
const finish = (j: JobRow, succeed: boolean) =>
  succeed
    ? svc().complete(j.id, null, j.leaseToken!, null, t.env.c.sql)
    : svc().fail(j.id, null, { leaseToken: j.leaseToken!, error: { message: "boom" }, retryable: false });
const row = async (id: string) => (await t.env.c.sql<JobRow[]>`SELECT * FROM jobs WHERE id = ${id}`)[0]!;
const cancelledEvents = async (id: string) =>
  (await t.env.c.sql`SELECT 1 FROM webhook_outbox WHERE subject_id = ${id} AND event_type = 'job.cancelled'`).length;

describe("workflow races (200 trials each)", () => {
  it("a parent finishing while its child is submitted: the child ends queued once or cancelled once, never waiting", async () => {
    const stuck: string[] = [];
    await trials(async (i) => {
      const succeed = i % 2 === 0;
      const p = await running(`r1p_${i}`);
      const [, child] = await Promise.all([finish(p, succeed), submit(`r1c_${i}`, { dependsOn: { jobs: [p.id] }, webhookUrl: HOOK })]);
      const c = await row(child.id);
      if (c.status === "waiting") stuck.push(c.id);
      expect(c.status).toBe(succeed ? "queued" : "cancelled");
      expect(c.pendingDependencies).toBe(0);
      expect(c.version).toBe(2);
      expect(await cancelledEvents(c.id)).toBe(succeed ? 0 : 1);
    });
    expect(stuck).toEqual([]);
  });

  it("first dependents of an unmarked parent submitted at once while it finishes: each released once, the parent marked", async () => {
    await trials(async (i) => {
      const p = await running(`r5p_${i}`);
      const [, ...children] = await Promise.all([
        finish(p, true),
        ...Array.from({ length: 4 }, (_, k) => submit(`r5c_${i}`, { dependsOn: { jobs: [p.id] }, idempotencyKey: `r5_${i}_${k}` })),
      ]);
      for (const child of children) {
        const c = await row(child.id);
        expect([c.status, c.pendingDependencies, c.version]).toEqual(["queued", 0, 2]);
      }
      expect((await row(p.id)).hasDependents).toBe(true);
    });
  });

  it("children naming a marked and an unmarked parent while both finish in one statement: no deadlock surfaces, each released once", async () => {
    await trials(async (i) => {
      const [a, b] = [await running(`r6a_${i}`), await running(`r6b_${i}`)];
      // One of the two marked already (by an earlier child), so submits take both lock modes.
      const first = await submit(`r6x_${i}`, { dependsOn: { jobs: [i % 2 ? a.id : b.id] } });
      const both = { dependsOn: { jobs: [a.id, b.id] } };
      const items = [a, b].map((j) => ({ id: j.id, leaseToken: j.leaseToken!, result: null }));
      const [, c1, c2] = await Promise.all([
        t.env.c.repos.jobs.completeManyIfLeased(items, null),
        submit(`r6c_${i}`, both),
        submit(`r6c_${i}`, both),
      ]);
      for (const id of [first.id, c1.id, c2.id]) expect((await row(id)).status).toBe("queued");
    });
  });

  it("two parents of one child finishing at once on two connections: released once (or cancelled once)", async () => {
    await trials(async (i) => {
      const bothSucceed = i % 4 !== 0;
      const [a, b] = await Promise.all([running(`r2a_${i}`), running(`r2b_${i}`)]);
      const child = await submit(`r2c_${i}`, { dependsOn: { jobs: [a.id, b.id] }, webhookUrl: HOOK });
      expect(child.status).toBe("waiting");
      await Promise.all([finish(a, true), finish(b, bothSucceed)]);
      const c = await row(child.id);
      expect(c.status).toBe(bothSucceed ? "queued" : "cancelled");
      // Cancelled at the failed parent (whichever came first), so the count may stop at 1.
      if (bothSucceed) expect([c.pendingDependencies, c.version]).toEqual([0, 3]);
      expect(await cancelledEvents(c.id)).toBe(bothSucceed ? 0 : 1);
      const { left } = (await t.env.c.sql<{ left: number }[]>`
        SELECT count(*)::int AS left FROM job_dependencies WHERE child_id = ${c.id} AND NOT resolved`)[0]!;
      expect(left).toBe(0);
    });
  });

  it("a parent cancelled while its child is being claimed: the child is never claimed, it ends cancelled", async () => {
    await trials(async (i) => {
      const p = await submit(`r3p_${i}`);
      const child = await submit(`r3c_${i}`, { dependsOn: { jobs: [p.id] } });
      const poll = () => claimDirect(t.env, `r3c_${i}`);
      const [cancelled, byId, polled1, polled2] = await Promise.all([
        svc().cancel(p.id, null),
        svc().claim(child.id, null, { workerId: "w", leaseSeconds: 60 }),
        poll(),
        poll(),
      ]);
      expect(cancelled.ok).toBe(true);
      expect(byId.ok).toBe(false);
      expect([...polled1, ...polled2]).toEqual([]);
      const c = await row(child.id);
      expect([c.status, c.attempts]).toEqual(["cancelled", 0]);
    });
  });

  it("diamond A → (B, C) → D with B and C finishing together: D released once", async () => {
    await trials(async (i) => {
      const a = await running(`r4a_${i}`);
      const b = await submit(`r4b_${i}`, { dependsOn: { jobs: [a.id] } });
      const c = await submit(`r4c_${i}`, { dependsOn: { jobs: [a.id] } });
      const d = await submit(`r4d_${i}`, { dependsOn: { jobs: [b.id, c.id] } });
      await finish(a, true);
      const [rb, rc] = await Promise.all([
        svc().claim(b.id, null, { workerId: "w", leaseSeconds: 60 }),
        svc().claim(c.id, null, { workerId: "w", leaseSeconds: 60 }),
      ]);
      // Released to the held tag: claimable once the promotion has tagged them.
      const lb = rb.ok ? rb.value : await promotedAndClaimed(b.id);
      const lc = rc.ok ? rc.value : await promotedAndClaimed(c.id);
      await Promise.all([finish(lb, true), finish(lc, true)]);
      const rd = await row(d.id);
      expect([rd.status, rd.pendingDependencies, rd.version]).toEqual(["queued", 0, 3]);
    });
  });
});

async function promotedAndClaimed(id: string): Promise<JobRow> {
  for (let k = 0; k < 200; k++) {
    await claimDirect(t.env, "__none__");
    const out = await svc().claim(id, null, { workerId: "w", leaseSeconds: 60 });
    if (out.ok) return out.value;
    await new Promise((r) => setTimeout(r, 20));
  }
  throw new Error(`job ${id} never became claimable`);
}
