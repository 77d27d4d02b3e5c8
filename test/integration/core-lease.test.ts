import { describe, expect, it } from "vitest";
import { reapOnce } from "../../src/worker/reaper.js";
import { completeJob, processNext, submitJob, useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("core_lease");

const submit = (queue: string, extra: object = {}) =>
  submitJob<{ id: string; version: number }>(setup.env, setup.client, { queue, kind: "k", payload: { x: 1 }, ...extra });
const poll = async (queue: string, workerId: string) => (await processNext(setup.env, setup.worker, { queues: [queue], workerId })).jobs;
const complete = (id: string, leaseToken: string, result: unknown = { ok: true }) => completeJob(setup.env, setup.worker, id, leaseToken, result);
const outboxRows = async (id: string) =>
  setup.env.c.sql<{ eventType: string; data: { status: string; version: number } }[]>`
    SELECT event_type, data FROM webhook_outbox WHERE subject_id = ${id}`;
const expireLease = (id: string) => setup.env.c.sql`UPDATE jobs SET lease_expires_at = now() - interval '1 second' WHERE id = ${id}`;

describe("lease fencing", () => {
  it("a stale lease token after expiry and re-claim gets 409; the second worker's complete wins", async () => {
    const job = await submit("lease1", { webhookUrl: "https://example.com/hook" });
    const [a] = await poll("lease1", "worker-a");
    expect(a).toMatchObject({ id: job.id, attempts: 1, workerId: "worker-a" });

    await expireLease(job.id);
    expect(await reapOnce(setup.env.c)).toBe(1);
    const [b] = await poll("lease1", "worker-b");
    expect(b).toMatchObject({ id: job.id, attempts: 2, workerId: "worker-b" });
    expect(b!.leaseToken).not.toBe(a!.leaseToken);

    // The first worker wakes up: heartbeat, complete and fail are all fenced.
    const hb = await setup.env.http().post(`/v1/jobs/${job.id}/heartbeat`).set("authorization", setup.worker).send({ leaseToken: a!.leaseToken });
    expect(hb.status).toBe(409);
    expect(hb.body.code).toBe("lease_lost");
    const staleComplete = await complete(job.id, a!.leaseToken, { from: "a" });
    expect(staleComplete.status).toBe(409);
    expect(staleComplete.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect(staleComplete.body.code).toBe("lease_lost");
    const staleFail = await setup.env.http().post(`/v1/jobs/${job.id}/fail`).set("authorization", setup.worker)
      .send({ leaseToken: a!.leaseToken, error: { message: "late" } });
    expect(staleFail.status).toBe(409);
    expect(staleFail.body.code).toBe("lease_lost");

    const won = await complete(job.id, b!.leaseToken, { from: "b" });
    expect(won.status).toBe(200);
    expect(won.body).toMatchObject({ status: "succeeded", result: { from: "b" }, workerId: "worker-b", attempts: 2 });

    // After B's complete, A's token still loses: the job is not running any more.
    const after = await complete(job.id, a!.leaseToken, { from: "a" });
    expect(after.status).toBe(409);
    expect(after.body.code).toBe("not_running");

    const [row] = await setup.env.c.sql<{ status: string; result: unknown; version: number }[]>`
      SELECT status::text, result, version FROM jobs WHERE id = ${job.id}`;
    expect(row).toEqual({ status: "succeeded", result: { from: "b" }, version: won.body.version });
    const events = await outboxRows(job.id);
    expect(events).toHaveLength(1);
    expect(events[0]!.eventType).toBe("job.succeeded");
    expect(events[0]!.data.version).toBe(won.body.version);
  });

  it("an expired but not re-claimed lease loses to the reaper; the reaper then wins, not the stale holder", async () => {
    const job = await submit("lease2");
    const [a] = await poll("lease2", "worker-a");
    await expireLease(job.id);
    await reapOnce(setup.env.c);
    const r = await complete(job.id, a!.leaseToken);
    expect(r.status).toBe(409);
    expect(r.body.code).toBe("not_running");
    const [row] = await setup.env.c.sql<{ status: string }[]>`SELECT status::text FROM jobs WHERE id = ${job.id}`;
    expect(row!.status).toBe("queued");
  });

  it("a late fail after the reaper cancelled the job is 409, even with the error of the attempt before", async () => {
    // Attempt 1 fails with E; attempt 2 is asked to cancel, its lease runs out and the reaper
    // cancels the job. The holder of attempt 2 then fails it with the same E: not its own
    // call repeated (the reaper finished the job), so not a replay.
    const job = await submit("lease3", { maxAttempts: 3 });
    const error = { message: "upstream timeout", code: "timeout" };
    const fail = (token: string) =>
      setup.env.http().post(`/v1/jobs/${job.id}/fail`).set("authorization", setup.worker).send({ leaseToken: token, error, retryable: true, retryAfterSeconds: 0 });
    const [a] = await poll("lease3", "worker-a");
    expect((await fail(a!.leaseToken)).status).toBe(200);
    const [b] = await poll("lease3", "worker-b");
    expect(b).toMatchObject({ id: job.id, attempts: 2 });
    const cancel = await setup.env.http().post(`/v1/jobs/${job.id}/cancel`).set("authorization", setup.client).send({});
    expect(cancel.body).toMatchObject({ status: "running", cancelRequested: true });
    await expireLease(job.id);
    expect(await reapOnce(setup.env.c)).toBe(1);
    const late = await fail(b!.leaseToken);
    expect(late.status).toBe(409);
    expect(late.body.code).toBe("not_running");
    const [row] = await setup.env.c.sql<{ status: string; lastError: unknown }[]>`SELECT status::text, last_error FROM jobs WHERE id = ${job.id}`;
    expect(row).toEqual({ status: "cancelled", lastError: { message: "lease expired", code: "lease_expired" } });
  });

  it("complete repeated with the same token returns the same job, one transition, one outbox row", async () => {
    const job = await submit("lease3", { webhookUrl: "https://example.com/hook" });
    const [a] = await poll("lease3", "worker-a");
    const first = await complete(job.id, a!.leaseToken, { n: 1 });
    expect(first.status).toBe(200);
    // Sequential repeats, then a burst of concurrent repeats; a different result body changes nothing.
    const again = await complete(job.id, a!.leaseToken, { n: 1 });
    const burst = await Promise.all(Array.from({ length: 10 }, (_, i) => complete(job.id, a!.leaseToken, { n: i })));
    for (const r of [again, ...burst]) {
      expect(r.status).toBe(200);
      expect(r.body).toEqual(first.body);
      expect(r.headers.etag).toBe(`"${first.body.version}"`);
    }
    const [row] = await setup.env.c.sql<{ version: number; updatedAt: Date; result: unknown }[]>`
      SELECT version, updated_at, result FROM jobs WHERE id = ${job.id}`;
    expect(row!.version).toBe(first.body.version);
    expect(row!.updatedAt.toISOString()).toBe(first.body.updatedAt);
    expect(row!.result).toEqual({ n: 1 });
    expect(await outboxRows(job.id)).toHaveLength(1);
  });

  it("concurrent first completes with the same token: exactly one transition, every caller sees the same job", async () => {
    for (let t = 0; t < 20; t++) {
      const job = await submit("lease4", { webhookUrl: "https://example.com/hook" });
      const [a] = await poll("lease4", "worker-a");
      const res = await Promise.all(Array.from({ length: 6 }, () => complete(job.id, a!.leaseToken, { t })));
      for (const r of res) {
        expect(r.status, JSON.stringify(r.body)).toBe(200);
        expect(r.body).toEqual(res[0]!.body);
      }
      const [row] = await setup.env.c.sql<{ version: number }[]>`SELECT version FROM jobs WHERE id = ${job.id}`;
      // submit = 1, claim = 2, complete = 3: no second write.
      expect(row!.version).toBe(3);
      expect(await outboxRows(job.id)).toHaveLength(1);
    }
  });

  it("heartbeat with the live token extends the lease; a random token is 409", async () => {
    const job = await submit("lease5");
    const [a] = await poll("lease5", "worker-a");
    await expireLease(job.id);
    const hb = await setup.env.http().post(`/v1/jobs/${job.id}/heartbeat`).set("authorization", setup.worker).send({ leaseToken: a!.leaseToken, leaseSeconds: 120 });
    expect(hb.status).toBe(200);
    expect(new Date(hb.body.leaseExpiresAt).getTime()).toBeGreaterThan(Date.now() + 60_000);
    // The heartbeat landed before the reaper: it must not reap a renewed lease.
    expect(await reapOnce(setup.env.c)).toBe(0);
    const bad = await setup.env.http().post(`/v1/jobs/${job.id}/heartbeat`).set("authorization", setup.worker)
      .send({ leaseToken: "00000000-0000-4000-8000-000000000000" });
    expect(bad.status).toBe(409);
    expect(bad.body.code).toBe("lease_lost");
  });
});
