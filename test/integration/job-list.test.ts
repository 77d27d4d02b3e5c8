import { describe, expect, it } from "vitest";
import { useTestEnv } from "../helpers/app.js";

// GET /v1/jobs takes its order from job_list, a row per job written by triggers when the job
// is inserted and removed when it is deleted, so state changes never touch the list index.
// Every way jobs are written must keep the two tables in step.

const setup = useTestEnv("job_list");

const post = (path: string, body: object, auth = setup.client) => setup.env.http().post(path).set("authorization", auth).send(body);
const get = (path: string, auth = setup.client) => setup.env.http().get(path).set("authorization", auth);
const drift = async () => {
  const [r] = await setup.env.c.sql<{ missing: number; orphans: number }[]>`
    SELECT count(*) FILTER (WHERE l.id IS NULL)::int AS missing, count(*) FILTER (WHERE j.id IS NULL)::int AS orphans
    FROM jobs j FULL JOIN job_list l ON l.id = j.id AND l.tenant = j.tenant AND l.created_at = j.created_at`;
  return r;
};

async function listAll(query: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (;;) {
    const res = await get(`/v1/jobs?${query}&limit=7${cursor ? `&cursor=${cursor}` : ""}`);
    expect(res.status).toBe(200);
    ids.push(...res.body.items.map((j: { id: string }) => j.id));
    cursor = res.body.nextCursor;
    if (!cursor) return ids;
  }
}

describe("job list", () => {
  it("lists every job once, newest first, across submits, concurrent submits, batches, claims and completes", async () => {
    const single = (await post("/v1/jobs", { queue: "lq", kind: "k", payload: {} })).body.id as string;
    // Concurrent submits share one multi-row insert (src/services/jobs.ts submitTogether).
    const together = await Promise.all(
      Array.from({ length: 20 }, (_, i) => post("/v1/jobs", { queue: "lq", kind: "k", payload: { i } })),
    );
    const batch = await post("/v1/batches", { jobs: Array.from({ length: 15 }, (_, i) => ({ queue: "lq", kind: "k", payload: { i } })) });
    expect(batch.status).toBe(201);
    expect(await drift()).toEqual({ missing: 0, orphans: 0 });

    // Claims and completes change state only: the list keeps every job, in the same order.
    const before = await listAll("queue=lq");
    expect(before).toHaveLength(36);
    expect(new Set(before).size).toBe(36);
    expect(before).toContain(single);
    for (const r of together) expect(before).toContain(r.body.id);
    for (;;) {
      const claimed = await post("/v1/process-next", { queues: ["lq"], workerId: "w", max: 10 }, setup.worker);
      if (claimed.body.jobs.length === 0) break;
      const items = claimed.body.jobs.map((j: { id: string; leaseToken: string }) => ({ id: j.id, leaseToken: j.leaseToken }));
      expect((await post("/v1/jobs/complete", { items }, setup.worker)).status).toBe(200);
    }
    expect(await listAll("queue=lq")).toEqual(before);
    expect(await listAll("queue=lq&status=succeeded")).toEqual(before);
    expect(await listAll("queue=lq&status=queued")).toEqual([]);

    // Newest first, ties broken by id: the same order the rows have in jobs.
    const ordered = await setup.env.c.sql<{ id: string }[]>`
      SELECT id FROM jobs WHERE tenant = 'acme' AND queue = 'lq' ORDER BY created_at DESC, id DESC`;
    expect(before).toEqual(ordered.map((r) => r.id));
    expect(await drift()).toEqual({ missing: 0, orphans: 0 });
  });

  it("a tenant's list is served from the list index, not by sorting its jobs", async () => {
    await setup.env.c.sql`
      INSERT INTO jobs (tenant, queue, kind, payload, created_at)
      SELECT 't' || (g % 20), 'big', 'k', '{}', now() - g * interval '1 second' FROM generate_series(1, 5000) g`;
    await setup.env.c.sql`ANALYZE job_list`;
    await setup.env.c.sql`ANALYZE jobs`;
    const plan = JSON.stringify(
      await setup.env.c.sql`EXPLAIN (FORMAT JSON)
        SELECT j.* FROM job_list l JOIN jobs j ON j.id = l.id WHERE l.tenant = 't3'
        ORDER BY l.created_at DESC NULLS LAST, l.id DESC NULLS LAST LIMIT 50`, // as jobs.list writes it
    );
    expect(plan).toContain("job_list_uidx");
    expect(plan).not.toContain('"Sort"');
  });

  it("deletes and truncates of jobs take their list entries with them", async () => {
    await post("/v1/jobs", { queue: "lq2", kind: "k", payload: {} });
    await setup.env.c.sql`DELETE FROM jobs WHERE queue = 'lq2'`;
    expect(await drift()).toEqual({ missing: 0, orphans: 0 });
    await setup.env.c.sql`TRUNCATE jobs CASCADE`;
    const [n] = await setup.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM job_list`;
    expect(n!.n).toBe(0);
  });
});
