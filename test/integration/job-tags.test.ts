import { describe, expect, it } from "vitest";
import { submitJob, useTestEnv } from "../helpers/app.js";

// Tags at submit and the job search (DESIGN.md "Operator control and visibility"):
// GET /v1/jobs?tag=&createdAfter=&createdBefore=, combinable with the other filters, keyset-paged.
const t = useTestEnv("job_tags");
const get = (path: string, key = t.client) => t.env.http().get(path).set("authorization", key);
type Page = { items: Array<{ id: string; tags: string[]; status: string; createdAt: string }>; nextCursor: string | null };

async function all(path: string, limit = 3): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await get(`${path}&limit=${limit}${cursor ? `&cursor=${cursor}` : ""}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const page = r.body as Page;
    ids.push(...page.items.map((i) => i.id));
    cursor = page.nextCursor;
  } while (cursor);
  return ids;
}

describe("tags and search", () => {
  it("finds jobs by tag, newest first, across keyset pages, combined with status and a time window", async () => {
    const a: string[] = [];
    for (let i = 0; i < 7; i++) a.push((await submitJob(t.env, t.client, { queue: "tq", kind: "k", tags: ["cust-1", `n${i}`, "cust-1"] })).id);
    const b = await submitJob<{ id: string; tags: string[]; createdAt: string }>(t.env, t.client, { queue: "tq", kind: "k", tags: ["cust-2"] });
    expect(b.tags).toEqual(["cust-2"]);
    // Another tenant's job with the same tag is not theirs to see.
    const other = await t.env.key("other", "client");
    await submitJob(t.env, other, { queue: "tq", kind: "k", tags: ["cust-1"] });

    expect(await all("/v1/jobs?tag=cust-1")).toEqual([...a].reverse());
    const one = await get(`/v1/jobs?tag=n3`);
    expect(one.body.items.map((i: { id: string }) => i.id)).toEqual([a[3]]);
    expect(one.body.items[0].tags).toEqual(["cust-1", "n3"]);

    // Cancel two, then filter by tag and status together.
    for (const id of [a[1], a[4]]) expect((await t.env.http().post(`/v1/jobs/${id}/cancel`).set("authorization", t.client)).status).toBe(200);
    expect(await all("/v1/jobs?tag=cust-1&status=cancelled", 1)).toEqual([a[4], a[1]]);

    // A time window (exclusive bounds), with and without a tag.
    const rows = await t.env.c.sql<{ id: string; at: string }[]>`SELECT id, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') AS at FROM jobs WHERE id = ANY(${[a[2]!, a[5]!]}::uuid[]) ORDER BY created_at`;
    const [lo, hi] = [rows[0]!.at, rows[1]!.at];
    expect(await all(`/v1/jobs?tag=cust-1&createdAfter=${lo}&createdBefore=${hi}`)).toEqual([a[4], a[3]]);
    expect(await all(`/v1/jobs?queue=tq&createdAfter=${lo}&createdBefore=${hi}`)).toEqual([a[4], a[3]]);
    expect(await all("/v1/jobs?tag=cust-2&createdBefore=1971-01-01T00:00:00Z")).toEqual([]);
    expect(await all("/v1/jobs?tag=cust-2&createdAfter=1971-01-01T00:00:00Z")).toEqual([b.id]);
  });

  it("batch jobs and schedule templates take tags; a bulk filter by tag acts on exactly those jobs", async () => {
    const r = await t.env
      .http()
      .post("/v1/batches")
      .set("authorization", t.client)
      .send({ jobs: [{ queue: "bq", kind: "k", tags: ["bt"] }, { queue: "bq", kind: "k" }, { queue: "bq", kind: "k", tags: ["bt", "x"] }] });
    expect(r.status).toBe(201);
    const tagged = await all("/v1/jobs?tag=bt");
    expect(tagged.length).toBe(2);
    const bulk = await t.env.http().post("/v1/jobs/bulk").set("authorization", t.client).send({ action: "cancel", filter: { tag: "bt" } });
    expect(bulk.body).toEqual({ matched: 2, changed: 2, skipped: 0 });
    const statuses = await t.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE queue = 'bq' AND status = 'cancelled'`;
    expect(statuses[0]!.n).toBe(2);
    expect(await all("/v1/jobs?tag=bt&status=cancelled")).toEqual(tagged);

    const s = await t.env
      .http()
      .post("/v1/schedules")
      .set("authorization", t.client)
      .send({ name: "tagged", cron: "0 0 1 1 *", job: { queue: "sq", kind: "k", tags: ["nightly"] } });
    expect(s.status, JSON.stringify(s.body)).toBe(201);
    expect(s.body.job.tags).toEqual(["nightly"]);
  });

  it("a deleted job leaves no tag entry; retention's deletes neither", async () => {
    const { id } = await submitJob(t.env, t.client, { queue: "dq", kind: "k", tags: ["gone"] });
    await t.env.http().post(`/v1/jobs/${id}/cancel`).set("authorization", t.client);
    expect((await t.env.http().delete(`/v1/jobs/${id}`).set("authorization", t.client)).status).toBe(204);
    const left = await t.env.c.sql`SELECT 1 FROM job_tags WHERE id = ${id}`;
    expect(left.length).toBe(0);
    expect(await all("/v1/jobs?tag=gone")).toEqual([]);
  });

  it("refuses too many, too long or empty tags and bad time bounds with 400", async () => {
    const bad = [
      { tags: Array.from({ length: 21 }, (_, i) => `t${i}`) },
      { tags: ["x".repeat(65)] },
      { tags: [""] },
      { tags: ["a\u0000b"] },
    ];
    for (const extra of bad) {
      const r = await t.env.http().post("/v1/jobs").set("authorization", t.client).send({ queue: "vq", kind: "k", ...extra });
      expect(r.status, JSON.stringify(extra).slice(0, 80)).toBe(400);
    }
    const ok = await t.env.http().post("/v1/jobs").set("authorization", t.client).send({ queue: "vq", kind: "k", tags: Array.from({ length: 20 }, () => "y".repeat(64)) });
    expect(ok.status).toBe(201);
    for (const q of ["createdAfter=yesterday", "createdBefore=0000-01-01T00:00:00Z", `tag=${"z".repeat(65)}`])
      expect((await get(`/v1/jobs?${q}`)).status, q).toBe(400);
  });
});
