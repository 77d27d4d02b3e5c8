import { Webhook } from "standardwebhooks";
import { beforeAll, describe, expect, it } from "vitest";
import { useJobline } from "./helpers/useJobline.js";
import { api, type Jobline, type Receiver, until, webhookHeaders } from "./helpers/util.js";

/**
 * Two `jobline serve` and two `jobline worker` processes on one database;
 * 16 HTTP polling clients in this process; a receiver that verifies every
 * webhook signature with the standardwebhooks reference library.
 */

const JOBS = 2000;
const POLLERS = 16;
const t = useJobline("worker_cluster", { stopGraceMs: 5000 });
let apis: Jobline[] = [];
let receiver: Receiver;

beforeAll(async () => {
  receiver = await t.receiver();
  const env = {
    JOBLINE_WEBHOOK_ALLOW_HOSTS: "127.0.0.1",
    JOBLINE_WEBHOOK_POLL_MS: "100",
    JOBLINE_DB_POOL_MAX: "10",
  };
  // Started one after another: each runs the migrations check and the bootstrap key upsert.
  apis = [await t.start("serve", env), await t.start("serve", env)];
  await Promise.all([t.start("worker", env), t.start("worker", env)]);
});

describe("2 API + 2 worker processes, 2,000 jobs, 16 HTTP pollers", () => {
  it("every job completes exactly once and yields exactly one correctly signed webhook", async () => {
    const [a, b] = apis as [Jobline, Jobline];
    const client = await t.key(a, "cluster", "client");
    const worker = await t.key(b, "cluster", "worker");
    const secretRes = await api(b.url, t.admin, "GET", "/v1/tenants/cluster/webhook-secret");
    expect(secretRes.status).toBe(200);
    const wh = new Webhook(secretRes.body.secret);

    const t0 = performance.now();
    const claims = new Map<string, number>();
    const completed = new Set<string>();
    const errors: string[] = [];
    let submitted = 0;
    let done = false;

    const submitter = async (i: number) => {
      while (submitted < JOBS) {
        const n = submitted++;
        const base = n % 2 === 0 ? a.url : b.url;
        const r = await api(base, client, "POST", "/v1/jobs", { queue: "cluster", kind: "k", payload: { n }, webhookUrl: receiver.url });
        if (r.status !== 201) errors.push(`submit ${n} via ${i}: ${r.status} ${JSON.stringify(r.body)}`);
      }
    };
    const poller = async (i: number) => {
      const base = i % 2 === 0 ? a.url : b.url;
      while (!done) {
        const r = await api(base, worker, "POST", "/v1/process-next", { queues: ["cluster"], workerId: `poller-${i}`, max: 5, waitMs: 1000 });
        if (r.status !== 200) {
          errors.push(`process-next ${r.status} ${JSON.stringify(r.body)}`);
          continue;
        }
        for (const j of r.body.jobs as Array<{ id: string; leaseToken: string; attempts: number; payload: { n: number } }>) {
          claims.set(j.id, (claims.get(j.id) ?? 0) + 1);
          const c = await api(base === a.url ? b.url : a.url, worker, "POST", `/v1/jobs/${j.id}/complete`, {
            leaseToken: j.leaseToken,
            result: { n: j.payload.n, by: i },
          });
          if (c.status !== 200 || c.body.status !== "succeeded") errors.push(`complete ${j.id}: ${c.status}`);
          else completed.add(j.id);
        }
        if (completed.size >= JOBS) done = true;
      }
    };
    const pollers = Array.from({ length: POLLERS }, (_, i) => poller(i));
    await Promise.all(Array.from({ length: 16 }, (_, i) => submitter(i)));
    const submittedAt = performance.now();
    try {
      await until("every job completed", () => (completed.size >= JOBS || errors.length > 0 ? true : undefined), 180_000, 50);
    } finally {
      done = true;
      await Promise.all(pollers);
    }
    expect(errors).toEqual([]);
    const processedAt = performance.now();
    expect(completed.size).toBe(JOBS);
    expect(claims.size).toBe(JOBS);
    expect([...claims.values()].every((v) => v === 1)).toBe(true);

    await until("a webhook per job", () => (new Set(receiver.deliveries.map((d) => d.headers["webhook-id"])).size >= JOBS ? true : undefined), 120_000, 100);
    const deliveredAt = performance.now();
    // Anything late or duplicated would show up now.
    await new Promise((r) => setTimeout(r, 500));
    const seen = new Map<string, number>();
    for (const d of receiver.deliveries) {
      const event = wh.verify(d.body, webhookHeaders(d)) as { type: string; data: { id: string; status: string; result: { n: number } } };
      expect(event.type).toBe("job.succeeded");
      expect(event.data.status).toBe("succeeded");
      seen.set(event.data.id, (seen.get(event.data.id) ?? 0) + 1);
    }
    expect(receiver.deliveries).toHaveLength(JOBS);
    expect(seen.size).toBe(JOBS);
    expect(new Set(seen.keys())).toEqual(completed);

    const rows = await t.sql<{ status: string; attempts: number; n: number }[]>`
      SELECT status::text, attempts, count(*)::int AS n FROM jobs GROUP BY 1, 2`;
    expect(rows).toEqual([{ status: "succeeded", attempts: 1, n: JOBS }]);
    // The receiver saw each webhook exactly once (above). An attempt that failed before reaching
    // it (a connect or response timeout on a loaded machine) is retried, so attempts may be > 1.
    const out = await t.sql<{ status: string; n: number; retried: number }[]>`
      SELECT status::text, count(*)::int AS n, count(*) FILTER (WHERE attempts > 1)::int AS retried
      FROM webhook_outbox GROUP BY 1`;
    expect(out.map(({ status, n }) => ({ status, n }))).toEqual([{ status: "delivered", n: JOBS }]);
    if (out[0]!.retried > 0) console.log(`cluster: ${out[0]!.retried} webhook(s) needed a second attempt after a failed one`);
    const s = (x: number) => ((x - t0) / 1000).toFixed(1);
    console.log(
      `cluster: ${JOBS} submitted by ${s(submittedAt)} s, all completed by ${s(processedAt)} s, all webhooks delivered by ${s(deliveredAt)} s`,
    );
  });
});
