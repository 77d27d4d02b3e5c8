import { describe, expect, it } from "vitest";
import { claimDirect, useTestEnv } from "../helpers/app.js";

// POST /v1/jobs/bulk under load: a bulk retry of thousands of failed jobs while workers drain
// the queue and a bulk cancel runs at the same time.
const t = useTestEnv("jobs_bulk", { JOBLINE_DB_ACQUIRE_TIMEOUT_MS: 30_000 });
const HOOK = "https://example.com/hook";
const N = 3000;
const Q = "bulk_q";
const svc = () => t.env.c.services.jobs;
const bulk = (body: object) => t.env.http().post("/v1/jobs/bulk").set("authorization", t.client).send(body);

async function drainOnce(pFail: number): Promise<number> {
  const got = await claimDirect(t.env, Q, { max: 50 });
  for (const j of got) {
    const out =
      Math.random() < pFail
        ? await svc().fail(j.id, null, { leaseToken: j.leaseToken!, error: { message: "boom" }, retryable: false })
        : await svc().complete(j.id, null, j.leaseToken!, null);
    expect(out.ok).toBe(true);
  }
  return got.length;
}

describe("POST /v1/jobs/bulk", () => {
  it("validates its body and counts matched, changed, skipped", async () => {
    expect((await bulk({ action: "retry" })).status).toBe(400);
    expect((await bulk({ action: "retry", ids: [], filter: {} })).status).toBe(400);
    expect((await bulk({ action: "nuke", filter: {} })).status).toBe(400);
    const r = await bulk({ action: "delete", ids: ["00000000-0000-7000-8000-000000000000"] });
    expect(r.body).toEqual({ matched: 0, changed: 0, skipped: 0 });
  });

  it(`bulk retry of ${N} failed jobs vs draining workers vs a bulk cancel: one consistent state, events match finalisations`, async () => {
    // Test-only instrumentation: every status change of a job, as committed.
    await t.env.c.sql.unsafe(`
      CREATE TABLE job_status_log (job_id uuid, from_status text, to_status text);
      CREATE FUNCTION log_job_status() RETURNS trigger LANGUAGE plpgsql AS $$
      BEGIN
        IF NEW.status IS DISTINCT FROM OLD.status THEN INSERT INTO job_status_log VALUES (NEW.id, OLD.status, NEW.status); END IF;
        RETURN NEW;
      END $$;
      CREATE TRIGGER job_status_log AFTER UPDATE ON jobs FOR EACH ROW EXECUTE FUNCTION log_job_status();`);
    for (let i = 0; i < N; i += 100)
      await Promise.all(
        Array.from({ length: Math.min(100, N - i) }, () => svc().submit("acme", { queue: Q, kind: "k", payload: {}, maxAttempts: 1, webhookUrl: HOOK })),
      );
    await Promise.all(Array.from({ length: 4 }, async () => {
      while ((await drainOnce(1)) > 0);
    }));
    const [{ failed }] = await t.env.c.sql<[{ failed: number }]>`SELECT count(*)::int AS failed FROM jobs WHERE queue = ${Q} AND status = 'failed'`;
    expect(failed).toBe(N);

    let stop = false;
    const workers = Array.from({ length: 3 }, async () => {
      while (!stop) if ((await drainOnce(0.3)) === 0) await new Promise((r) => setTimeout(r, 5));
    });
    const [retry, cancel] = await Promise.all([
      bulk({ action: "retry", filter: { queue: Q, status: "failed" } }),
      (async () => {
        // Once the retry has requeued its first chunk: the cancel then meets queued, running and failed jobs.
        for (;;) {
          const [{ n }] = await t.env.c.sql<[{ n: number }]>`SELECT count(*)::int AS n FROM jobs WHERE queue = ${Q} AND status <> 'failed'`;
          if (n > 0) break;
          await new Promise((r) => setTimeout(r, 2));
        }
        return bulk({ action: "cancel", filter: { queue: Q } });
      })(),
    ]);
    expect(retry.status).toBe(200);
    expect(cancel.status).toBe(200);
    stop = true;
    await Promise.all(workers);
    while ((await drainOnce(0.3)) > 0);

    for (const r of [retry.body, cancel.body]) expect(r.matched).toBe(r.changed + r.skipped);
    expect(retry.body.matched).toBe(N);
    expect(cancel.body.changed).toBeGreaterThan(0);
    const [log] = await t.env.c.sql<[{ retried: number }]>`
      SELECT count(*)::int AS retried FROM job_status_log WHERE to_status = 'queued' AND from_status IN ('failed', 'cancelled')`;
    expect(log.retried).toBe(retry.body.changed);
    // Every job finished, once per finalisation an event of that status, and no other event.
    const bad = await t.env.c.sql`
      WITH fin AS (
        SELECT job_id, to_status, count(*)::int AS n FROM job_status_log
        WHERE to_status IN ('succeeded', 'failed', 'cancelled') GROUP BY 1, 2
      ), ev AS (
        SELECT subject_id AS job_id, substr(event_type, 5) AS to_status, count(*)::int AS n FROM webhook_outbox GROUP BY 1, 2
      )
      SELECT * FROM fin FULL JOIN ev USING (job_id, to_status) WHERE fin.n IS DISTINCT FROM ev.n`;
    expect(bad).toEqual([]);
    const states = await t.env.c.sql<{ status: string; n: number }[]>`
      SELECT status, count(*)::int AS n FROM jobs WHERE queue = ${Q} GROUP BY status`;
    expect(states.every((s) => ["succeeded", "failed", "cancelled"].includes(s.status)), JSON.stringify(states)).toBe(true);
    expect(states.reduce((a, s) => a + s.n, 0)).toBe(N);
    console.log(`bulk: retry ${JSON.stringify(retry.body)}, cancel ${JSON.stringify(cancel.body)}, end ${JSON.stringify(states)}`);

    // Delete by filter: every finished job of the queue goes.
    const del = await bulk({ action: "delete", filter: { queue: Q }, limit: 10_000 });
    expect(del.body).toEqual({ matched: N, changed: N, skipped: 0 });
  }, 180_000);
});
