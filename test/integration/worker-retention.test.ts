import { describe, expect, it, vi } from "vitest";
import { retainOnce } from "../../src/worker/retention.js";
import { useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("worker_retention", { JOBLINE_RETENTION_DAYS: 7 });

const OLD = "now() - interval '8 days'";
const RECENT = "now() - interval '6 days'";

/** n jobs in one INSERT; `finished` is an SQL time expression or null for unfinished ones. */
async function jobs(n: number, status: string, finished: string | null, batchId: string | null = null) {
  return setup.env.c.sql<{ id: string }[]>`
    INSERT INTO jobs (tenant, queue, kind, payload, status, finished_at, batch_id, attempts, lease_token, lease_expires_at)
    SELECT 'ret', 'ret', 'k', '{}', ${status}::job_status, ${finished ? setup.env.c.sql.unsafe(finished) : null},
           ${batchId}::uuid, CASE WHEN ${status} = 'running' THEN 1 ELSE 0 END,
           CASE WHEN ${status} = 'running' THEN gen_random_uuid() END,
           CASE WHEN ${status} = 'running' THEN now() + interval '1 hour' END
    FROM generate_series(1, ${n}) RETURNING id`;
}

async function batch(status: string, finished: string | null, total: number) {
  const [b] = await setup.env.c.sql<{ id: string }[]>`
    INSERT INTO batches (tenant, status, total, remaining, finished_at)
    VALUES ('ret', ${status}::batch_status, ${total}, ${finished ? 0 : total}, ${finished ? setup.env.c.sql.unsafe(finished) : null})
    RETURNING id`;
  return b!.id;
}

const exists = async (table: "jobs" | "batches" | "webhook_outbox", ids: string[]) => {
  const [r] = await setup.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM ${setup.env.c.sql(table)} WHERE id = ANY(${ids}::uuid[])`;
  return r!.n;
};
const ids = (rows: Array<{ id: string }>) => rows.map((r) => r.id);

describe("retention", () => {
  it("deletes old finished jobs, terminal batches with their jobs and settled events (more than one chunk of each); keeps everything else", async () => {
    const oldDone = ids(await jobs(2500, "succeeded", OLD));
    const oldFailed = ids(await jobs(3, "failed", OLD));
    const recentDone = ids(await jobs(3, "succeeded", RECENT));
    const queued = ids(await jobs(3, "queued", null));
    const running = ids(await jobs(3, "running", null));

    const doneBatch = await batch("succeeded", OLD, 1500);
    const doneBatchJobs = ids(await jobs(1500, "succeeded", OLD, doneBatch));
    // A batch still running keeps all its jobs, however old the finished ones are.
    const openBatch = await batch("running", null, 4);
    const openBatchDone = ids(await jobs(3, "succeeded", OLD, openBatch));
    const openBatchRunning = ids(await jobs(1, "running", null, openBatch));
    const recentBatch = await batch("failed", RECENT, 2);
    const recentBatchJobs = ids(await jobs(2, "failed", RECENT, recentBatch));

    const events = async (status: string, created: string) =>
      ids(
        await setup.env.c.sql<{ id: string }[]>`
          INSERT INTO webhook_outbox (tenant, subject_id, event_type, generation, url, data, status, created_at)
          SELECT 'ret', gen_random_uuid(), 'job.succeeded', 1, 'https://example.com', '{}', ${status}::outbox_status, ${setup.env.c.sql.unsafe(created)}
          FROM generate_series(1, 3) RETURNING id`,
      );
    const oldDelivered = await events("delivered", OLD);
    const oldDead = await events("dead", OLD);
    const oldPending = await events("pending", OLD);
    const recentDelivered = await events("delivered", RECENT);

    const r = await retainOnce(setup.env.c, 1000);
    expect(r).toMatchObject({ jobs: 2503, batches: 1, events: 6 });

    expect(await exists("jobs", [...oldDone, ...oldFailed, ...doneBatchJobs])).toBe(0);
    expect(await exists("batches", [doneBatch])).toBe(0);
    expect(await exists("jobs", recentDone)).toBe(3);
    expect(await exists("jobs", [...queued, ...running])).toBe(6);
    expect(await exists("batches", [openBatch, recentBatch])).toBe(2);
    expect(await exists("jobs", [...openBatchDone, ...openBatchRunning, ...recentBatchJobs])).toBe(6);
    expect(await exists("webhook_outbox", [...oldDelivered, ...oldDead])).toBe(0);
    expect(await exists("webhook_outbox", [...oldPending, ...recentDelivered])).toBe(6);

    // The tenant's list order (job_list, kept by triggers) lost exactly the deleted jobs,
    // those of the deleted batch included (a cascade delete).
    const [drift] = await setup.env.c.sql<{ n: number }[]>`
      SELECT count(*)::int AS n FROM jobs j FULL JOIN job_list l ON l.id = j.id WHERE j.id IS NULL OR l.id IS NULL`;
    expect(drift!.n).toBe(0);

    // Nothing left to do: a second pass deletes nothing.
    expect(await retainOnce(setup.env.c, 1000)).toMatchObject({ jobs: 0, batches: 0, events: 0 });
  });

  it("prunes fairness counters of long-idle groups, keeps recent ones and queue clocks", async () => {
    await setup.env.c.sql`
      INSERT INTO job_groups (queue, fair_key, last_tag, updated_at) VALUES
        ('gq', 'old-group', 10, now() - interval '8 days'),
        ('gq', 'recent-group', 10, now()),
        ('gq', ${"\u001e"}, 10, now() - interval '8 days')`;
    const r = await retainOnce(setup.env.c, 1000);
    expect(r.groups).toBeGreaterThanOrEqual(1);
    const left = await setup.env.c.sql<{ fairKey: string }[]>`SELECT fair_key FROM job_groups WHERE queue = 'gq' ORDER BY fair_key`;
    expect(left.map((g) => g.fairKey).sort()).toEqual(["\u001e", "recent-group"].sort());
  });
  it("judges age by the database's clock: a process whose clock runs two days ahead deletes nothing recent", async () => {
    const recent = ids(await jobs(3, "succeeded", RECENT));
    const realNow = Date.now.bind(Date);
    const ahead = vi.spyOn(Date, "now").mockImplementation(() => realNow() + 2 * 86_400_000);
    try {
      await retainOnce(setup.env.c);
    } finally {
      ahead.mockRestore();
    }
    // Six days old by the database, eight by the process: kept (retention is 7 days).
    expect(await exists("jobs", recent)).toBe(3);
  });
});
