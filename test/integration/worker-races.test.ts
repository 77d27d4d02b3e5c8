import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { isTerminal } from "../../src/domain/jobs.js";
import { createWebhookDispatcher } from "../../src/worker/webhooks.js";
import { startReceiver, until } from "../e2e/helpers/util.js";
import { useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("worker_races", {
  JOBLINE_WEBHOOK_ALLOW_HOSTS: "127.0.0.1",
  JOBLINE_WEBHOOK_POLL_MS: 20,
  JOBLINE_WEBHOOK_CONCURRENCY: 32,
});
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

const shuffle = <T>(a: T[]) => {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [a[i], a[j]] = [a[j]!, a[i]!];
  }
  return a;
};

describe("complete vs fail vs cancel vs reaper on one job", () => {
  it("300 trials: exactly one finalisation and exactly one outbox event (and one delivery) each", async () => {
    const trials = 300;
    const jobs = setup.env.c.services.jobs;
    const winners: Record<string, number> = {};
    const ids: string[] = [];
    for (let t = 0; t < trials; t++) {
      // One attempt only, so every path that moves the job on (complete, fail, reap) finalises it.
      const s = await jobs.submit("race", { queue: "race", kind: "k", payload: { t }, maxAttempts: 1, webhookUrl: receiver.url });
      if (!s.ok) throw new Error(s.error);
      const id = s.value.id;
      ids.push(id);
      const [claimed] = await jobs.claimNext({ queues: ["race"], scope: null, workerId: "w", leaseSeconds: 30, max: 1, waitMs: 0 });
      expect(claimed?.id).toBe(id);
      const token = claimed!.leaseToken!;
      // Expired, so the reaper is a real contender; the token still fences complete and fail.
      await setup.env.c.sql`UPDATE jobs SET lease_expires_at = now() - interval '1 millisecond' WHERE id = ${id}`;
      const ops: Array<() => Promise<[string, boolean]>> = [
        async () => {
          const r = await jobs.complete(id, null, token, { by: "complete" });
          return ["complete", r.ok && !r.replay];
        },
        async () => {
          const r = await jobs.fail(id, null, { leaseToken: token, error: { message: "failed" }, retryable: t % 2 === 0 });
          return ["fail", r.ok && !r.replay];
        },
        async () => {
          const r = await jobs.cancel(id, null);
          // A running job only gets cancelRequested; the finaliser decides between cancelled and the rest.
          return ["cancel", r.ok && r.value.status === "cancelled"];
        },
        async () => {
          const rows = await setup.env.c.repos.jobs.reapExpired(1000);
          return ["reaper", rows.some((r) => r.id === id && isTerminal(r.status))];
        },
      ];
      const results = await Promise.all(shuffle(ops).map((op) => op()));
      const won = results.filter(([, w]) => w).map(([name]) => name);
      expect(won, `trial ${t}: ${JSON.stringify(results)}`).toHaveLength(1);
      winners[won[0]!] = (winners[won[0]!] ?? 0) + 1;
      const row = (await setup.env.c.repos.jobs.findById(id, null))!;
      expect(isTerminal(row.status)).toBe(true);
      const events = await setup.env.c.sql<{ eventType: string; data: { status: string } }[]>`
        SELECT event_type, data FROM webhook_outbox WHERE subject_id = ${id}`;
      expect(events, `trial ${t}`).toHaveLength(1);
      expect(events[0]!.eventType).toBe(`job.${row.status}`);
      expect(events[0]!.data.status).toBe(row.status);
    }
    console.log(`race winners over ${trials} trials: ${JSON.stringify(winners)}`);
    // Every contender that can finalise won at least once, or the race was not a race.
    expect(Object.keys(winners).sort()).toEqual(expect.arrayContaining(["complete", "fail", "reaper"]));

    // And each event reaches the receiver exactly once.
    const d = createWebhookDispatcher({ ...setup.env.c, outbox: setup.env.c.repos.outbox, tenants: setup.env.c.repos.tenants });
    d.start();
    try {
      await until("every event delivered", async () => {
        const [r] = await setup.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM webhook_outbox WHERE status = 'delivered'`;
        return r!.n === trials ? true : undefined;
      }, 60_000);
    } finally {
      await d.stop();
    }
    const subjects = receiver.deliveries.map((x) => (JSON.parse(x.body) as { data: { id: string } }).data.id);
    expect(subjects).toHaveLength(trials);
    expect(new Set(subjects)).toEqual(new Set(ids));
  });
});
