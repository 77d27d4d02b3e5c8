import { beforeAll, describe, expect, it } from "vitest";
import { Jobline } from "../../clients/typescript/src/index.js";
import { useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

/** The SDK's operator methods (client.jobs.retry / delete / bulk / list / wait) and ctx.progress, against a listening API. */

const setup = useTestEnv("sdk_operator", {}, { listen: true });
let client: Jobline;
let workers: Jobline;
beforeAll(() => {
  client = new Jobline({ baseUrl: setup.base, apiKey: setup.client });
  workers = new Jobline({ baseUrl: setup.base, apiKey: setup.worker });
});

describe("Jobline.jobs and ctx.progress", () => {
  it("wait() returns once the job is finished; retry, list by tag, bulk and delete act on it", async () => {
    const job = await client.submit("ops", "k", { n: 1 }, { maxAttempts: 1, tags: ["sdk"] });
    const unfinished = await client.jobs.wait(job.id, { timeoutMs: 300 });
    expect(unfinished.status).toBe("queued");
    const waiting = client.jobs.wait(job.id, { timeoutMs: 20_000 });
    const worker = workers.work("ops", async () => {
      throw new Error("nope");
    }, { waitMs: 200 });
    try {
      expect((await waiting).status).toBe("failed");
    } finally {
      await worker.stop();
    }
    expect((await client.jobs.retry(job.id)).status).toBe("queued");
    const page = await client.jobs.list({ tag: "sdk", status: "queued" });
    expect(page.items.map((j) => j.id)).toEqual([job.id]);
    expect(await client.jobs.bulk({ action: "cancel", filter: { tag: "sdk" } })).toEqual({ matched: 1, changed: 1, skipped: 0 });
    await client.jobs.delete(job.id);
    await expect(client.get(job.id)).rejects.toMatchObject({ status: 404 });
  }, 60_000);

  it("ctx.progress reaches GET within a couple of seconds, though heartbeats are due every 20 s", async () => {
    const job = await client.submit("prog", "k", {});
    let release!: () => void;
    const hold = new Promise<void>((r) => {
      release = r;
    });
    const worker = workers.work("prog", async (_j, ctx) => {
      for (let i = 1; i <= 100; i++) ctx.progress({ percent: i, message: `step ${i}` });
      expect(() => ctx.progress({ message: "x".repeat(1025) })).toThrow(TypeError);
      await hold;
      return "ok";
    }, { waitMs: 200, leaseSeconds: 60 });
    try {
      const seen = await until("progress", async () => {
        const j = await client.get(job.id);
        return j.progress?.percent === 100 ? j : undefined;
      }, 8_000);
      expect(seen.progress?.message).toBe("step 100");
      expect(seen.version).toBeLessThanOrEqual(5);
    } finally {
      release();
      await worker.stop();
    }
    expect((await client.jobs.wait(job.id, { timeoutMs: 10_000 })).status).toBe("succeeded");
  }, 60_000);
});
