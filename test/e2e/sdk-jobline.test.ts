import { describe, expect, it, vi } from "vitest";
import { Jobline, JoblineApiError, JoblineConnectionError, NonRetryableError } from "../../clients/typescript/src/index.js";
import { freePort } from "../../src/db/embedded.js";
import { useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

/** The high-level SDK (`new Jobline<Kinds>()`, submit, work, stop) against a listening API. */

type Kinds = { double: { n: number }; boom: { why: string } };

const setup = useTestEnv("sdk_jobline", {}, { listen: true });

describe("Jobline (high level)", () => {
  it("submits typed jobs and runs them with a stoppable worker", async () => {
    const errors: unknown[] = [];
    const client = new Jobline<Kinds>({ baseUrl: setup.base, apiKey: setup.client });
    const job = await client.submit("hl", "double", { n: 21 }, { maxAttempts: 1 });
    expect(job).toMatchObject({ queue: "hl", kind: "double", payload: { n: 21 }, status: "queued" });
    const bad = await client.submit("hl", "boom", { why: "no" });
    // @ts-expect-error the payload of `double` is { n: number }
    if (Math.random() > 2) await client.submit("hl", "double", { why: "x" });

    const workers = new Jobline<Kinds>({ baseUrl: setup.base, apiKey: setup.worker, onError: (e) => errors.push(e) });
    const worker = workers.work("hl", {
      double: async (j) => ({ doubled: j.payload.n * 2 }),
      boom: async (j) => {
        throw new NonRetryableError(j.payload.why, { code: "boom" });
      },
    }, { waitMs: 500 });
    await until("both jobs finish", async () => ((await client.get(job.id)).status === "succeeded" && (await client.get(bad.id)).status === "failed") || undefined, 20_000);
    const stats = await worker.stop();
    expect(stats).toMatchObject({ claimed: 2, succeeded: 1, failed: 1 });
    expect((await client.get(job.id)).result).toEqual({ doubled: 42 });
    expect(errors).toEqual([]);
  }, 60_000);

  it("one function handles every kind", async () => {
    const client = new Jobline<Kinds>({ baseUrl: setup.base, apiKey: setup.client });
    const a = await client.submit("any", "double", { n: 1 });
    const b = await client.submit("any", "boom", { why: "fine" });
    const worker = new Jobline<Kinds>({ baseUrl: setup.base, apiKey: setup.worker }).work(["any"], async (j) => (j.kind === "double" ? j.payload.n : j.payload.why), { waitMs: 500 });
    await until("both jobs succeed", async () => ((await client.get(a.id)).status === "succeeded" && (await client.get(b.id)).status === "succeeded") || undefined, 20_000);
    await worker.stop();
    expect([(await client.get(a.id)).result, (await client.get(b.id)).result]).toEqual([1, "fine"]);
  }, 60_000);

  it("a wrong URL fails fast with the URL and the cause, reported once by default", async () => {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const log = vi.spyOn(console, "error").mockImplementation(() => {});
    try {
      const worker = new Jobline<Kinds>({ baseUrl: url, apiKey: setup.worker }).work("hl", async () => null);
      const err = await worker.done.catch((e: unknown) => e);
      expect(err).toBeInstanceOf(JoblineConnectionError);
      expect((err as Error).message).toBe(`cannot reach jobline at ${url}: ECONNREFUSED`);
      expect(log).toHaveBeenCalledWith(`jobline: cannot reach jobline at ${url}: ECONNREFUSED`);
      await expect(worker.stop()).rejects.toBe(err);

      // A submit resends a few times (each resend reported), then throws: never forever.
      const retries: unknown[] = [];
      const client = new Jobline<Kinds>({ baseUrl: url, apiKey: setup.client, onError: (e) => retries.push(e) });
      await expect(client.submit("hl", "double", { n: 1 })).rejects.toThrow(`cannot reach jobline at ${url}: ECONNREFUSED`);
      expect(retries).toHaveLength(3);
    } finally {
      log.mockRestore();
    }
  }, 30_000);

  it("a wrong key fails fast with a clear 401", async () => {
    const errors: unknown[] = [];
    const client = new Jobline<Kinds>({ baseUrl: setup.base, apiKey: "jl_wrong", onError: (e) => errors.push(e) });
    const refused = await client.submit("hl", "double", { n: 1 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(JoblineApiError);
    expect((refused as JoblineApiError).status).toBe(401);
    expect((refused as Error).message).toContain("check the API key");
    const worker = client.work("hl", async () => null);
    await expect(worker.done).rejects.toMatchObject({ status: 401 });
    expect(errors).toHaveLength(1);
  }, 30_000);
});
