import { describe, expect, it } from "vitest";
import { createWorker } from "../../src/worker/inProcess.js";
import { processNext, submitJob, useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

// Progress (DESIGN.md "Operator control and visibility"): sent with a heartbeat by the lease
// holder, stored by the heartbeat's guarded statement, shown by GET.
const t = useTestEnv("job_progress");
const http = () => t.env.http();
type Job = { id: string; version: number; status: string; leaseToken: string; progress: null | { percent?: number; message?: string; data?: unknown; at: string } };

async function leased(queue: string): Promise<Job> {
  await submitJob(t.env, t.client, { queue, kind: "k" });
  const { jobs } = await processNext<Job>(t.env, t.worker, { queues: [queue] });
  expect(jobs.length).toBe(1);
  return jobs[0]!;
}
const getJob = async (id: string) => (await http().get(`/v1/jobs/${id}`).set("authorization", t.client)).body as Job;
const beat = (id: string, body: object) => http().post(`/v1/jobs/${id}/heartbeat`).set("authorization", t.worker).send(body);

describe("progress", () => {
  it("the lease holder's heartbeat stores it; GET shows it; a heartbeat without progress keeps it", async () => {
    const j = await leased("p1");
    expect((await getJob(j.id)).progress).toBeNull();
    const r = await beat(j.id, { leaseToken: j.leaseToken, progress: { percent: 42.5, message: "half way", data: { rows: 17 } } });
    expect(r.status).toBe(200);
    const seen = await getJob(j.id);
    expect(seen.progress).toMatchObject({ percent: 42.5, message: "half way", data: { rows: 17 } });
    expect(Date.parse(seen.progress!.at)).not.toBeNaN();
    expect((await beat(j.id, { leaseToken: j.leaseToken })).status).toBe(200);
    expect((await getJob(j.id)).progress).toEqual(seen.progress);
  });

  it("a heartbeat with another lease token writes nothing (409)", async () => {
    const j = await leased("p2");
    await beat(j.id, { leaseToken: j.leaseToken, progress: { percent: 10 } });
    const before = await getJob(j.id);
    const r = await beat(j.id, { leaseToken: crypto.randomUUID(), progress: { percent: 99, message: "not mine" } });
    expect(r.status).toBe(409);
    const after = await getJob(j.id);
    expect(after.progress).toEqual(before.progress);
    expect(after.version).toBe(before.version);
  });

  it("refuses progress beyond its limits with 400 and writes nothing", async () => {
    const j = await leased("p3");
    const before = await getJob(j.id);
    for (const progress of [{ percent: 101 }, { percent: -1 }, { message: "é".repeat(513) }, { data: { pad: "x".repeat(16 * 1024) } }, { extra: 1 }]) {
      const r = await beat(j.id, { leaseToken: j.leaseToken, progress });
      expect(r.status, JSON.stringify(progress).slice(0, 60)).toBe(400);
    }
    expect((await getJob(j.id)).version).toBe(before.version);
    expect((await beat(j.id, { leaseToken: j.leaseToken, progress: { message: "x".repeat(1024), data: { pad: "y".repeat(16 * 1024 - 20) } } })).status).toBe(200);
  });

  it("createWorker's ctx.progress goes out with a heartbeat brought forward, coalesced: 500 reports, a handful of statements", async () => {
    const { id } = await submitJob<{ id: string }>(t.env, t.client, { queue: "p4", kind: "k" });
    let release!: () => void;
    const hold = new Promise<void>((r) => {
      release = r;
    });
    const w = createWorker({
      container: t.env.c,
      queues: ["p4"],
      // Automatic heartbeats every 20 s: only a brought-forward one can carry the report in time.
      leaseSeconds: 60,
      waitMs: 200,
      handlers: {
        k: async (_job, ctx) => {
          for (let i = 1; i <= 500; i++) ctx.progress({ percent: i / 5, message: `item ${i}` });
          expect(() => ctx.progress({ percent: 200 })).toThrow(TypeError);
          await hold;
          return { done: true };
        },
      },
    });
    try {
      const p = await until("progress stored", async () => {
        const j = await getJob(id);
        return j.progress?.percent === 100 ? j : undefined;
      }, 8_000);
      expect(p.progress!.message).toBe("item 500");
      // Claim (version 2) plus at most a few heartbeats: not one statement per report.
      expect(p.version).toBeLessThanOrEqual(5);
      release();
      await until("succeeded", async () => ((await getJob(id)).status === "succeeded" ? true : undefined), 10_000);
    } finally {
      release();
      await w.stop(2000);
    }
  }, 30_000);
});
