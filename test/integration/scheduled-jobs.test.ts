import { describe, expect, it, vi } from "vitest";
import { HELD_TAG } from "../../src/db/schema.js";
import { HOLD_AHEAD_MS } from "../../src/repositories/jobs.js";
import { toNewJob } from "../../src/services/jobs.js";
import { inTx } from "../../src/db/tx.js";
import { claimDirect, useTestEnv } from "../helpers/app.js";

// Jobs submitted with a runAt well ahead are held: no fairness tag from their group, not in
// the claim index. When due, a claiming process tags them as a submit at that moment would.

const setup = useTestEnv("scheduled_jobs");

const svc = () => setup.env.c.services.jobs;
const tomorrow = () => new Date(Date.now() + 86_400_000).toISOString();
const claim = (queue: string, max = 1, waitMs = 0) => claimDirect(setup.env, queue, { max, waitMs });
const heldMany = (queue: string, n: number, groupKey: string, runAt = tomorrow()) =>
  setup.env.c.sql.begin((tx) =>
    setup.env.c.repos.jobs.insertMany(
      Array.from({ length: n }, (_, i) => toNewJob("acme", { queue, kind: "k", payload: { i }, groupKey, runAt })),
      tx,
    ),
  );
const tagOf = async (id: string) => {
  const [r] = await setup.env.c.sql<{ tag: number }[]>`SELECT fair_tag::float8 AS tag FROM jobs WHERE id = ${id}`;
  return r!.tag;
};
/** 2,000 held jobs of `queue` falling due one every half millisecond, for a second from now. */
async function dueOneByOne(queue: string) {
  await heldMany(queue, 2000, "D");
  await setup.env.c.sql`
    UPDATE jobs SET run_at = clock_timestamp() + n * interval '0.5 millisecond'
    FROM (SELECT id, row_number() OVER (ORDER BY id) AS n FROM jobs WHERE queue = ${queue}) o
    WHERE jobs.id = o.id`;
}
/**
 * How many promotions `f` runs (the real repository method, spied on). A promotion runs
 * statements of up to 1,000 rows until one promotes fewer: that last one counts.
 */
async function promotionsDuring(f: () => Promise<unknown>): Promise<number> {
  const spy = vi.spyOn(setup.env.c.repos.jobs, "promoteDue");
  try {
    await f();
    return spy.mock.settledResults.filter((r) => r.type !== "fulfilled" || r.value.promoted < 1000).length;
  } finally {
    spy.mockRestore();
  }
}
/** Test-only time travel: the jobs' runAt passes. */
const makeDue = (queue: string) => setup.env.c.sql`UPDATE jobs SET run_at = now() - interval '1 millisecond' WHERE queue = ${queue}`;

describe("scheduled jobs", () => {
  it("a job held until tomorrow is not claimable, takes no tag from its group, and is claimed once due", async () => {
    const single = await svc().submit("acme", { queue: "s1", kind: "k", payload: {}, groupKey: "A", runAt: tomorrow() });
    if (!single.ok) throw new Error(single.error);
    const many = await heldMany("s1", 50, "A");
    expect(await tagOf(single.value.id)).toBe(HELD_TAG);
    for (const j of many) expect(Number(j.fairTag)).toBe(HELD_TAG);
    // Group A's counter was not moved by 51 held jobs (it does not exist yet).
    expect(await setup.env.c.sql`SELECT 1 FROM job_groups WHERE queue = 's1' AND fair_key LIKE 'acme%'`).toHaveLength(0);
    expect(await claim("s1", 10)).toEqual([]);

    await makeDue("s1");
    // A long poll picks them up: the claim that follows the promotion sees them.
    const got = [...(await claim("s1", 100, 3000))];
    while (got.length < 51) {
      const more = await claim("s1", 100, 3000);
      if (more.length === 0) break;
      got.push(...more);
    }
    expect(new Set(got.map((j) => j.id)).size).toBe(51);
    for (const j of got) expect(Number(j.fairTag)).toBeLessThan(HELD_TAG);
  });

  it("a job due within a few seconds is not held, and still waits for its runAt", async () => {
    const soon = new Date(Date.now() + HOLD_AHEAD_MS - 2000).toISOString();
    const r = await svc().submit("acme", { queue: "s2", kind: "k", payload: {}, runAt: soon });
    if (!r.ok) throw new Error(r.error);
    expect(await tagOf(r.value.id)).toBeLessThan(HELD_TAG);
    expect(await claim("s2")).toEqual([]);
  });

  it("once due, held jobs interleave with a waiting flood like fresh submits, not behind it", async () => {
    const b = (await heldMany("s3", 10, "B")).map((j) => j.id);
    await setup.env.c.sql.begin((tx) =>
      setup.env.c.repos.jobs.insertMany(
        Array.from({ length: 1000 }, (_, i) => toNewJob("acme", { queue: "s3", kind: "k", payload: { i }, groupKey: "A" })),
        tx,
      ),
    );
    await setup.env.c.sql`UPDATE jobs SET run_at = now() - interval '1 millisecond' WHERE id = ANY(${b}::uuid[])`;
    const promoted = await inTx(setup.env.c.sql, (tx) => setup.env.c.repos.jobs.promoteDue(1000, tx));
    expect(promoted).toEqual({ promoted: 10, queues: ["s3"] });
    const order: string[] = [];
    for (let i = 0; i < 30; i++) order.push(...(await claim("s3")).map((j) => j.id));
    const pos = b.map((id) => order.indexOf(id));
    for (const p of pos) expect(p, `B's jobs at claims ${pos.join(",")}`).toBeGreaterThanOrEqual(0);
  });

  it("a retry further ahead than a few seconds is held too; a short one keeps its place", async () => {
    const submitted = await Promise.all([0, 1].map(() => svc().submit("acme", { queue: "s5", kind: "k", payload: {} })));
    const [long, short] = await claim("s5", 2);
    for (const s of submitted) if (!s.ok) throw new Error(s.error);
    const fail = (j: { id: string; leaseToken: string | null }, retryAfterSeconds: number) =>
      svc().fail(j.id, null, { leaseToken: j.leaseToken!, error: { message: "x" }, retryable: true, retryAfterSeconds });
    expect((await fail(long!, 3600)).ok).toBe(true);
    expect((await fail(short!, 1)).ok).toBe(true);
    expect(await tagOf(long!.id)).toBe(HELD_TAG);
    expect(await tagOf(short!.id)).toBe(Number(short!.fairTag));
    await makeDue("s5");
    await inTx(setup.env.c.sql, (tx) => setup.env.c.repos.jobs.promoteDue(1000, tx));
    expect(new Set((await claim("s5", 10)).map((j) => j.id))).toEqual(new Set([long!.id, short!.id]));
  });

  it("concurrent promotions tag each due job exactly once, with distinct tags per group", async () => {
    await heldMany("s4", 1500, "C");
    await makeDue("s4");
    const promote = () => inTx(setup.env.c.sql, (tx) => setup.env.c.repos.jobs.promoteDue(200, tx));
    let total = 0;
    for (;;) {
      const rs = await Promise.all(Array.from({ length: 6 }, promote));
      const n = rs.reduce((a, r) => a + r.promoted, 0);
      total += n;
      if (n === 0) break;
    }
    expect(total).toBe(1500);
    const [r] = await setup.env.c.sql<{ held: number; tags: number }[]>`
      SELECT count(*) FILTER (WHERE fair_tag >= ${HELD_TAG})::int AS held, count(DISTINCT fair_tag)::int AS tags
      FROM jobs WHERE queue = 's4'`;
    expect(r).toEqual({ held: 0, tags: 1500 });
  });
  it("a held job of a batch still being built is not promoted, so cancelling the batch cancels it", async () => {
    const created = await setup.env.c.services.batches.create("acme", {
      seal: false,
      jobs: [{ queue: "s6", kind: "k", payload: {}, runAt: tomorrow() }],
    });
    if (!created.ok) throw new Error(created.error);
    const batchId = created.value.batch.id;
    await makeDue("s6");
    // A promotion in flight while the batch is cancelled: before the fix it held the job's
    // row lock, the cancel skipped it, and the job ran after its batch was cancelled.
    let release!: () => void;
    const held = new Promise<void>((r) => {
      release = r;
    });
    let promotedInFlight = -1;
    const promotion = inTx(setup.env.c.sql, async (tx) => {
      promotedInFlight = (await setup.env.c.repos.jobs.promoteDue(1000, tx)).promoted;
      await held;
    });
    while (promotedInFlight < 0) await new Promise((r) => setImmediate(r));
    const cancelled = await setup.env.c.services.batches.cancel(batchId, "acme");
    release();
    await promotion;
    if (!cancelled.ok) throw new Error(cancelled.error);
    expect(cancelled.value.counts.cancelled).toBe(1);
    const [job] = await setup.env.c.sql<{ status: string }[]>`SELECT status FROM jobs WHERE batch_id = ${batchId}`;
    expect(job!.status).toBe("cancelled");
    expect(await claim("s6", 10)).toEqual([]);
    expect(promotedInFlight).toBe(0);
  });

  it("a poll does not spin on promotions of other queues' jobs: it returns at its deadline", async () => {
    // Jobs of another queue fall due all the time.
    await dueOneByOne("s7-other");
    const promotions = await promotionsDuring(async () => expect(await claim("s7", 1, 0)).toEqual([]));
    // A poll with waitMs 0 promotes before its claim and once after the empty claim. Before
    // the fix it went on promoting and claiming for as long as other queues' jobs fell due.
    expect(promotions).toBeLessThanOrEqual(2);
  });
  it("no group can take a held tag: the database refuses the write that would hide its jobs for good", async () => {
    const r = await svc().submit("acme", { queue: "s8", kind: "k", payload: {}, groupKey: "E" });
    if (!r.ok) throw new Error(r.error);
    // What a replica of a release from before held jobs could write: its virtual time read
    // the smallest due queued tag without excluding held ones, which may be HELD_TAG itself.
    const poison = setup.env.c.sql`UPDATE job_groups SET last_tag = ${HELD_TAG} WHERE queue = 's8'`;
    await expect(poison).rejects.toMatchObject({ code: "23514", constraint_name: "job_groups_tag_below_held" });
    expect((await claim("s8")).map((j) => j.id)).toEqual([r.value.id]);
  });
  /**
   * A poll of `${p}-y` arrives while a promotion runs, after its job fell due; the poll must
   * take the job. `otherDue` held jobs of another queue, already due, make that promotion
   * run more than one round (PROMOTE_MAX_ROWS each), and a later round takes the job.
   */
  async function pollDuringPromotion(p: string, otherDue: number) {
    const r = await svc().submit("acme", { queue: `${p}-y`, kind: "k", payload: {}, runAt: tomorrow() });
    if (!r.ok) throw new Error(r.error);
    if (otherDue > 0) {
      await heldMany(`${p}-z`, otherDue, "Z");
      await makeDue(`${p}-z`);
    }
    // A promotion that has read the held jobs and is slow to finish (as when its tag
    // allocation waits on a group row): it holds until released.
    const repo = setup.env.c.repos.jobs;
    const real = repo.promoteDue;
    let entered!: () => void;
    const inside = new Promise<void>((res) => {
      entered = res;
    });
    let release!: () => void;
    const gate = new Promise<void>((res) => {
      release = res;
    });
    let calls = 0;
    // When the second poll's claim has come back empty (it promotes next).
    const realClaim = repo.claimNextFor;
    let claimedY!: () => void;
    const yClaimed = new Promise<void>((res) => {
      claimedY = res;
    });
    repo.claimNextFor = async (f, takers, q) => {
      const out = await realClaim(f, takers, q);
      if (f.queues.includes(`${p}-y`)) claimedY();
      return out;
    };
    repo.promoteDue = async (limit, q) => {
      const out = await real(limit, q);
      if (calls++ === 0) {
        entered();
        await gate;
      }
      return out;
    };
    try {
      const first = claim(`${p}-x`);
      await inside;
      await makeDue(`${p}-y`);
      const second = claim(`${p}-y`);
      // The second poll reaches the running promotion (its claim came back empty, and the
      // promotion call follows in the same turn) before that promotion ends.
      await yClaimed;
      await new Promise((res) => setImmediate(res));
      release();
      expect(await first).toEqual([]);
      expect((await second).map((j) => j.id)).toEqual([r.value.id]);
    } finally {
      repo.promoteDue = real;
      repo.claimNextFor = realClaim;
    }
  }
  it("a poll arriving while a promotion runs joins the next one, so a job just due is not missed", () =>
    pollDuringPromotion("s9", 0));
  it("a poll arriving while a promotion runs counts that promotion's later rounds, which may take its job", () =>
    pollDuringPromotion("s11", 1500));

  it("a kind-filtered poll is not woken into promotion after promotion by its own queue's other jobs", async () => {
    await dueOneByOne("s10");
    const promotions = await promotionsDuring(async () =>
      expect(
        await svc().claimNext({ queues: ["s10"], kinds: ["mine"], scope: null, workerId: "w", leaseSeconds: 60, max: 1, waitMs: 1000 }),
      ).toEqual([]),
    );
    // One retry after a promotion that fed the queue, then the usual rate (every 250 ms).
    // Before, each promotion's NOTIFY woke the poll to claim and promote again: ~200 in 1 s.
    expect(promotions).toBeLessThanOrEqual(10);
  });
});
