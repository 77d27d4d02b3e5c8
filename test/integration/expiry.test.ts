import { describe, expect, it } from "vitest";
import { reapOnce } from "../../src/worker/reaper.js";
import { submitJob, useTestEnv } from "../helpers/app.js";

// Expiring jobs (DESIGN.md "Time limits and deduplication", "Version 2 details").
const setup = useTestEnv("expiry");
const http = () => setup.env.http();
const row = async (id: string) =>
  (await setup.env.c.sql<{ status: string; lastError: { code?: string } | null; attempts: number }[]>`
    SELECT status::text, last_error, attempts FROM jobs WHERE id = ${id}`)[0]!;
const events = (id: string) => setup.env.c.sql<{ eventType: string }[]>`SELECT event_type FROM webhook_outbox WHERE subject_id = ${id}`;

describe("expiresAt / ttlSeconds", () => {
  it("a queued job past expiresAt is not claimable before the reaper; the reaper ends it cancelled (expired) with one event", async () => {
    const job = await submitJob<{ id: string; expiresAt: string }>(setup.env, setup.client, {
      queue: "e1", kind: "k", expiresAt: new Date(Date.now() - 1000).toISOString(), webhookUrl: "https://example.com/hook",
    });
    const poll = await http().post("/v1/process-next").set("authorization", setup.worker).send({ queues: ["e1"], workerId: "w" });
    expect(poll.body.jobs).toEqual([]);
    const byId = await http().post(`/v1/jobs/${job.id}/claim`).set("authorization", setup.worker).send({ workerId: "w" });
    expect(byId.status).toBe(409);
    expect((await row(job.id)).status).toBe("queued");

    await reapOnce(setup.env.c);
    expect(await row(job.id)).toMatchObject({ status: "cancelled", lastError: { code: "expired" }, attempts: 0 });
    await reapOnce(setup.env.c);
    expect((await events(job.id)).map((e) => e.eventType)).toEqual(["job.cancelled"]);
  });

  it("ttlSeconds sets expiresAt; a job started in time runs to the end", async () => {
    const t0 = Date.now();
    const job = await submitJob<{ id: string; expiresAt: string }>(setup.env, setup.client, { queue: "e2", kind: "k", ttlSeconds: 3600 });
    expect(Math.abs(Date.parse(job.expiresAt) - (t0 + 3_600_000))).toBeLessThan(60_000);
    const poll = await http().post("/v1/process-next").set("authorization", setup.worker).send({ queues: ["e2"], workerId: "w" });
    expect(poll.body.jobs.map((j: { id: string }) => j.id)).toEqual([job.id]);
    await reapOnce(setup.env.c);
    expect((await row(job.id)).status).toBe("running");
    const both = await http().post("/v1/jobs").set("authorization", setup.client)
      .send({ queue: "e2", kind: "k", ttlSeconds: 5, expiresAt: new Date().toISOString() });
    expect(both.status).toBe(400);
  });

  it("a claim and an expiry at the same instant: exactly one wins, in every trial", async () => {
    const jobs = setup.env.c.repos.jobs;
    const trials = 60;
    let claims = 0;
    let expiries = 0;
    for (let i = 0; i < trials; i++) {
      const queue = `race${i}`;
      const job = await submitJob(setup.env, setup.client, { queue, kind: "k" });
      // The expiry a few ms ahead by the database's clock; both statements start around it.
      const aheadMs = 20 + (i % 7);
      await setup.env.c.sql`UPDATE jobs SET expires_at = now() + make_interval(secs => ${aheadMs / 1000}) WHERE id = ${job.id}`;
      await new Promise((r) => setTimeout(r, aheadMs - 3 + (i % 5)));
      const [claimed, expired] = await Promise.all([
        jobs.claimNext({ queues: [queue], tenant: null, workerId: "w", leaseSeconds: 60, max: 1 }),
        jobs.expireDue(100),
      ]);
      // Whatever neither took (both ran before the instant) is settled once it has passed.
      const later = claimed.length + expired.length === 0 ? await settle(job.id) : [];
      const wonByClaim = claimed.some((r) => r.id === job.id);
      const wonByExpiry = [...expired, ...later].some((r) => r.id === job.id);
      expect(Number(wonByClaim) + Number(wonByExpiry), `trial ${i}`).toBe(1);
      expect((await row(job.id)).status).toBe(wonByClaim ? "running" : "cancelled");
      if (wonByClaim) claims++;
      else expiries++;
    }
    // How the instant split (not asserted: a loaded machine moves it).
    console.log(`claim/expiry race: ${claims} claims, ${expiries} expiries of ${trials}`);
    expect(claims + expiries).toBe(trials);
  });

  async function settle(id: string) {
    await new Promise((r) => setTimeout(r, 30));
    const expired = await setup.env.c.repos.jobs.expireDue(100);
    expect(expired.map((r) => r.id)).toContain(id);
    return expired;
  }
});
