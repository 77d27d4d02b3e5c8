import { describe, expect, it } from "vitest";
import type { JobRow } from "../../src/repositories/jobs.js";
import { claimDirect, useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

// Lock order between a cancellation by dependency and a sibling's finalisation (issue 28
// follow-up): W in batch X waits on P and on its sibling S. Failing P locks W, then X (W's
// cancellation finalises it into X); completing S locks S, X (its batch), then W (S's trigger).
// No one order fits both (a single cancel of W also locks W, then X), so PostgreSQL picks a
// victim, and each caller's statement must run again (rerunIfDeadlocked) rather than fail.
const t = useTestEnv("workflows_deadlock", { JOBLINE_DB_POOL_MAX: 40 });
const TRIALS = 60;
const AT_ONCE = 10;
const svc = () => t.env.c.services.jobs;
const batches = () => t.env.c.services.batches;

async function trial(i: number) {
  const p0 = await svc().submit("acme", { queue: `dl_p${i}`, kind: "k", payload: {} });
  if (!p0.ok) throw new Error(JSON.stringify(p0));
  const b = await batches().create("acme", { seal: false, jobs: [{ queue: `dl_s${i}`, kind: "k", payload: {} }] });
  if (!b.ok) throw new Error(JSON.stringify(b));
  const [s0] = await claimDirect(t.env, `dl_s${i}`);
  expect(s0, "the open batch's job is not claimable before the seal").toBeUndefined();
  const sId = (await t.env.c.sql<{ id: string }[]>`SELECT id FROM jobs WHERE batch_id = ${b.value.batch.id}`)[0]!.id;
  const added = await batches().addJobs(b.value.batch.id, null, [
    { queue: `dl_w${i}`, kind: "k", payload: {}, dependsOn: { jobs: [sId, p0.value.id] } },
  ]);
  if (!added.ok) throw new Error(JSON.stringify(added));
  const sealed = await batches().seal(b.value.batch.id, "acme");
  if (!sealed.ok) throw new Error(JSON.stringify(sealed));
  const lease = async (id: string): Promise<JobRow> =>
    until(`job ${id} claimable`, async () => {
      await claimDirect(t.env, "__none__");
      const out = await svc().claim(id, null, { workerId: "w", leaseSeconds: 60 });
      return out.ok ? out.value : undefined;
    });
  const [p, s] = await Promise.all([lease(p0.value.id), lease(sId)]);
  // Each on its own statement and connection, at the same instant.
  const [failed, completed] = await Promise.all([
    svc().fail(p.id, null, { leaseToken: p.leaseToken!, error: { message: "boom" }, retryable: false }),
    svc().complete(s.id, null, s.leaseToken!, null, t.env.c.sql),
  ]);
  expect([failed.ok, completed.ok]).toEqual([true, true]);
  const [w] = await t.env.c.sql<JobRow[]>`SELECT * FROM jobs WHERE batch_id = ${b.value.batch.id} AND id <> ${sId}`;
  expect([w!.status, w!.lastError]).toMatchObject(["cancelled", { code: "dependency_failed" }]);
  const [x] = await t.env.c.sql<{ status: string; remaining: number }[]>`SELECT status, remaining FROM batches WHERE id = ${b.value.batch.id}`;
  expect(x).toEqual({ status: "partially_succeeded", remaining: 0 });
}

const deadlocks = async () =>
  Number((await t.env.c.sql<{ n: string }[]>`SELECT deadlocks::text AS n FROM pg_stat_database WHERE datname = current_database()`)[0]!.n);

describe("workflow lock order", () => {
  it("failing a parent while a sibling (also a parent) in the dependent's batch completes: both succeed", { timeout: 120_000 }, async () => {
    const before = await deadlocks();
    for (let i = 0; i < TRIALS; i += AT_ONCE) await Promise.all(Array.from({ length: AT_ONCE }, (_, k) => trial(i + k)));
    // Informational (the counter reaches pg_stat_database about a second late): how often a victim was re-run.
    await new Promise((r) => setTimeout(r, 1500));
    await t.env.c.sql`SELECT pg_stat_clear_snapshot()`;
    console.log(`deadlocks detected and re-run: ${(await deadlocks()) - before} in ${TRIALS} trials`);
  });
});
