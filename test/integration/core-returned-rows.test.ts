import { describe, expect, it } from "vitest";
import { useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("core_returned_rows", {}, { listen: true });

interface Body {
  id: string;
  status: string;
  updatedAt: string;
  version: number;
  leaseToken?: string;
  leaseExpiresAt: string | null;
  attempts: number;
  cancelRequested: boolean;
}

async function dbRow(id: string) {
  const [r] = await setup.env.c.sql<{ status: string; updatedAt: Date; version: number; leaseExpiresAt: Date | null; attempts: number; cancelRequested: boolean }[]>`
    SELECT status::text, updated_at, version, lease_expires_at, attempts, cancel_requested FROM jobs WHERE id = ${id}`;
  return r!;
}

/** The body is exactly the row as it is now in the database (no later writer in between). */
async function expectMatchesDb(res: { status: number; body: Body; headers: Record<string, string> }, what: string) {
  expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBe(200);
  const row = await dbRow(res.body.id);
  expect(
    { status: res.body.status, updatedAt: res.body.updatedAt, version: res.body.version, attempts: res.body.attempts, cancelRequested: res.body.cancelRequested },
    what,
  ).toEqual({ status: row.status, updatedAt: row.updatedAt.toISOString(), version: row.version, attempts: row.attempts, cancelRequested: row.cancelRequested });
  expect(res.body.leaseExpiresAt, what).toBe(row.leaseExpiresAt?.toISOString() ?? null);
  expect(res.headers.etag, what).toBe(`"${row.version}"`);
}

const submit = async (queue: string) => {
  const r = await setup.env.http().post("/v1/jobs").set("authorization", setup.client).send({ queue, kind: "k", maxAttempts: 3 });
  expect(r.status).toBe(201);
  await expectMatchesDb({ status: 200, body: r.body, headers: r.headers }, "submit");
  return r.body as Body;
};

describe("returned representations are the winning statement's row", () => {
  it("claim (process-next and by id), complete, fail, cancel: status, updatedAt and version equal the DB row", async () => {
    const a = await submit("rr");
    const pn = await setup.env.http().post("/v1/process-next").set("authorization", setup.worker).send({ queues: ["rr"], workerId: "w" });
    expect(pn.body.jobs).toHaveLength(1);
    await expectMatchesDb({ status: 200, body: pn.body.jobs[0], headers: { etag: `"${pn.body.jobs[0].version}"` } }, "process-next");
    const completed = await setup.env.http().post(`/v1/jobs/${a.id}/complete`).set("authorization", setup.worker).send({ leaseToken: pn.body.jobs[0].leaseToken });
    await expectMatchesDb(completed, "complete");
    expect(completed.body.status).toBe("succeeded");

    const b = await submit("rr");
    const byId = await setup.env.http().post(`/v1/jobs/${b.id}/claim`).set("authorization", setup.worker).set("if-match", `"${b.version}"`).send({ workerId: "w" });
    await expectMatchesDb(byId, "claim by id");
    const retried = await setup.env.http().post(`/v1/jobs/${b.id}/fail`).set("authorization", setup.worker).send({ leaseToken: byId.body.leaseToken, error: { message: "x" } });
    await expectMatchesDb(retried, "fail → queued");
    expect(retried.body.status).toBe("queued");
    await setup.env.c.sql`UPDATE jobs SET run_at = now() - interval '1 second' WHERE id = ${b.id}`;
    const again = await setup.env.http().post(`/v1/jobs/${b.id}/claim`).set("authorization", setup.worker).send({ workerId: "w" });
    await expectMatchesDb(again, "claim after retry");
    const requested = await setup.env.http().post(`/v1/jobs/${b.id}/cancel`).set("authorization", setup.client);
    await expectMatchesDb(requested, "cancel request on running");
    expect(requested.body).toMatchObject({ status: "running", cancelRequested: true });
    const hb = await setup.env.http().post(`/v1/jobs/${b.id}/heartbeat`).set("authorization", setup.worker).send({ leaseToken: again.body.leaseToken, leaseSeconds: 300 });
    expect(hb.status).toBe(200);
    expect(hb.body.leaseExpiresAt).toBe((await dbRow(b.id)).leaseExpiresAt!.toISOString());
    const cancelledByFail = await setup.env.http().post(`/v1/jobs/${b.id}/fail`).set("authorization", setup.worker).send({ leaseToken: again.body.leaseToken, error: { message: "x" } });
    await expectMatchesDb(cancelledByFail, "fail → cancelled");
    expect(cancelledByFail.body.status).toBe("cancelled");

    const c = await submit("rr2");
    const cancelled = await setup.env.http().post(`/v1/jobs/${c.id}/cancel`).set("authorization", setup.client).set("if-match", `"${c.version}"`);
    await expectMatchesDb(cancelled, "cancel queued");
    expect(cancelled.body.status).toBe("cancelled");

    const d = await submit("rr3");
    const claimD = await setup.env.http().post(`/v1/jobs/${d.id}/claim`).set("authorization", setup.worker).send({ workerId: "w" });
    const failed = await setup.env.http().post(`/v1/jobs/${d.id}/fail`).set("authorization", setup.worker).send({ leaseToken: claimD.body.leaseToken, error: { message: "x" }, retryable: false });
    await expectMatchesDb(failed, "fail → failed");
    const got = await setup.env.http().get(`/v1/jobs/${d.id}`).set("authorization", setup.client);
    await expectMatchesDb(got, "get");
  });

  it("racing writers each get their own statement's version, never a re-read of the other's", async () => {
    // Enough trials that both orders occur many times (with 40, a cancel that answered with a
    // re-read of the row passed one run in four).
    let cancelFirst = 0;
    for (let t = 0; t < 200; t++) {
      const j = await submit("rr-race");
      const claimed = await setup.env.http().post(`/v1/jobs/${j.id}/claim`).set("authorization", setup.worker).send({ workerId: "w" });
      const [cancel, complete] = await Promise.all([
        setup.env.http().post(`/v1/jobs/${j.id}/cancel`).set("authorization", setup.client),
        setup.env.http().post(`/v1/jobs/${j.id}/complete`).set("authorization", setup.worker).send({ leaseToken: claimed.body.leaseToken }),
      ]);
      expect(complete.status).toBe(200);
      expect(complete.body.status).toBe("succeeded");
      const final = await dbRow(j.id);
      expect(complete.body.version).toBe(final.version);
      expect(complete.body.updatedAt).toBe(final.updatedAt.toISOString());
      if (cancel.status === 200) {
        // The cancel request won first: its body is the running row it wrote, one version before the complete.
        expect(cancel.body).toMatchObject({ status: "running", cancelRequested: true, version: final.version - 1 });
        expect(complete.body.cancelRequested).toBe(true);
        cancelFirst++;
      } else {
        expect(cancel.status).toBe(409);
        expect(cancel.body.code).toBe("terminal");
        expect(final.version).toBe(3);
      }
    }
    expect(cancelFirst).toBeGreaterThan(0);
  });
});
