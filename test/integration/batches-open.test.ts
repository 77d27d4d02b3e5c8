import { describe, expect, it } from "vitest";
import { HELD_TAG, PREPARING_TAG } from "../../src/db/schema.js";
import { reapOnce } from "../../src/worker/reaper.js";
import { claimDirect, useTestEnv } from "../helpers/app.js";

// Jobs of an open batch carry the open-batch tag: out of the claim index and the held
// index, so no claim or promotion walks them. The seal hands them to the promotion, which
// tags them as submits at that moment; nothing else may leave one untagged for good.

const setup = useTestEnv("batches_open");

const batches = () => setup.env.c.services.batches;
const claim = (queue: string, max = 100, waitMs = 0) => claimDirect(setup.env, queue, { max, waitMs });
const jobsOf = (n: number, queue: string) => Array.from({ length: n }, (_, i) => ({ queue, kind: "k", payload: { i } }));
const tags = (batchId: string) =>
  setup.env.c.sql<{ tag: number }[]>`SELECT fair_tag::float8 AS tag FROM jobs WHERE batch_id = ${batchId}`.then((r) => r.map((x) => x.tag));
async function openBatch(queue: string, n: number) {
  const b = await batches().create("acme", { seal: false, jobs: jobsOf(n, queue) });
  if (!b.ok) throw new Error(b.error);
  const added = await batches().addJobs(b.value.batch.id, "acme", jobsOf(n, queue));
  if (!added.ok) throw new Error(added.error);
  return b.value.batch.id;
}
async function claimAll(queue: string, expected: number) {
  const got: string[] = [];
  while (got.length < expected) {
    const more = await claim(queue, 100, 3000);
    if (more.length === 0) break;
    got.push(...more.map((j) => j.id));
  }
  return got;
}

/**
 * An open batch of 2n jobs, and a connection holding its first job's row lock in an open
 * transaction: a single-job cancel's first step (its next is the batch row).
 */
async function openBatchWithHeldJob(queue: string, n: number) {
  const id = await openBatch(queue, n);
  const [victim] = await setup.env.c.sql<{ id: string }[]>`SELECT id FROM jobs WHERE batch_id = ${id} ORDER BY id LIMIT 1`;
  const holder = await setup.env.c.sql.reserve();
  await holder`BEGIN`;
  await holder`SELECT id FROM jobs WHERE id = ${victim!.id} FOR UPDATE`;
  return { id, victim: victim!.id, holder };
}

describe("open batches", () => {
  it("an open batch's jobs take no tag until the seal; a waiting poll claims them all once sealed", async () => {
    const id = await openBatch("ob1", 25);
    expect(await tags(id)).toEqual(Array(50).fill(PREPARING_TAG));
    expect(await claim("ob1")).toEqual([]);
    const poll = claimAll("ob1", 50);
    const sealed = await batches().seal(id, "acme");
    if (!sealed.ok) throw new Error(sealed.error);
    const got = await poll;
    expect(got).toHaveLength(50);
    expect(new Set(got).size).toBe(50);
    for (const t of await tags(id)) expect(t).toBeLessThan(HELD_TAG);
  });

  it("jobs cancelled while their batch was open run once each after the batch is retried", async () => {
    const id = await openBatch("ob2", 10);
    const cancelled = await batches().cancel(id, "acme");
    if (!cancelled.ok) throw new Error(cancelled.error);
    expect(cancelled.value.batch.status).toBe("cancelled");
    const retried = await batches().retry(id, "acme");
    if (!retried.ok) throw new Error(retried.error);
    const got = await claimAll("ob2", 20);
    expect(new Set(got).size).toBe(20);
    expect(await claim("ob2")).toEqual([]);
  });

  it("a seal does not wait for a job a single-job cancel holds (that cancel locks the batch next)", async () => {
    const { id, victim, holder: cancel } = await openBatchWithHeldJob("ob4", 5);
    try {
      let timer: NodeJS.Timeout | undefined;
      const sealed = await Promise.race([
        batches().seal(id, "acme"),
        new Promise<"waited">((res) => {
          timer = setTimeout(() => res("waited"), 5000);
        }),
      ]);
      clearTimeout(timer);
      // Had it waited, the cancel's next lock (the batch row, held by the seal) closed a cycle.
      expect(sealed).not.toBe("waited");
      const [done] = await setup.env.c.repos.jobs.cancelIfQueued([victim], null, undefined, cancel);
      expect(done?.status).toBe("cancelled");
      await cancel`COMMIT`;
    } finally {
      await cancel`ROLLBACK`.catch(() => {});
      cancel.release();
    }
    const got = await claimAll("ob4", 9);
    expect(new Set(got).size).toBe(9);
    expect(got).not.toContain(victim);
  });

  it("a cancel of an open batch that skipped a job a rolled-back single-job cancel held: the reaper cancels that job, it never runs", async () => {
    // The single-job cancel holding the job rolls back (a deadlock victim, a killed connection)
    // after the batch's cancel went by.
    const { id, victim, holder: single } = await openBatchWithHeldJob("ob5", 3);
    try {
      const cancelled = await batches().cancel(id, "acme");
      if (!cancelled.ok) throw new Error(cancelled.error);
      expect(cancelled.value.counts).toMatchObject({ queued: 1, cancelled: 5 });
      await single`ROLLBACK`;
    } finally {
      single.release();
    }
    await reapOnce(setup.env.c);
    const [job] = await setup.env.c.sql<{ status: string; finishedAt: Date | null }[]>`SELECT status, finished_at FROM jobs WHERE id = ${victim}`;
    expect(job!.status).toBe("cancelled");
    expect(job!.finishedAt).not.toBeNull();
    // Released instead, it would be promoted and claimed here.
    await setup.env.c.sql.begin((tx) => setup.env.c.repos.jobs.promoteDue(100, tx));
    expect(await claim("ob5")).toEqual([]);
    const b = await batches().get(id, "acme");
    if (!b.ok) throw new Error(b.error);
    expect(b.value.batch).toMatchObject({ status: "cancelled", remaining: 0 });
    expect(b.value.counts).toMatchObject({ queued: 0, cancelled: 6 });
  });

  it("a batch sealed by an older release (tags left as they were) is released by the reaper", async () => {
    const stillOpen = await openBatch("ob3", 3);
    const id = await openBatch("ob3", 15);
    // What a release from before open-batch tags does on seal: the batch row only.
    await setup.env.c.sql`UPDATE batches SET status = 'pending', sealed_at = now() WHERE id = ${id}`;
    expect(await claim("ob3")).toEqual([]);
    await reapOnce(setup.env.c);
    const got = await claimAll("ob3", 30);
    expect(new Set(got).size).toBe(30);
    // The reaper leaves a batch that is still open alone.
    expect(await tags(stillOpen)).toEqual(Array(6).fill(PREPARING_TAG));
  });
});
