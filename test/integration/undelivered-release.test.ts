// Seed case claimed_then_missing: jobs leased to a poll whose client went away before the answer
// was written are released at once (fenced by their lease tokens), counted, and run only once.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { completeJob, processNext, submitJob, useKeys, useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

const setup = useTestEnv("undelivered", {}, { listen: true });
const k = useKeys(setup, { client: ["u", "client"], worker: ["u", "worker"] });

const submit = async (queue: string, n: number, payload: unknown = { x: 1 }) => {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) ids.push((await submitJob(setup.env, k.client, { queue, kind: "k", payload })).id);
  return ids;
};

/** A process-next on a raw socket that never reads its answer; the caller closes it. */
const rawPoll = (queue: string, max: number) => {
  const body = JSON.stringify({ queues: [queue], workerId: "vanishing", max, leaseSeconds: 300 });
  const socket = net.connect(setup.port, "127.0.0.1");
  socket.on("error", () => {});
  socket.write(
    `POST /v1/process-next HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: ${k.worker}\r\n` +
      `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
  );
  return socket;
};

type Row = { id: string; status: string; attempts: number; leaseToken: string | null; version: number };
const rows = (ids: string[]) => setup.env.c.sql<Row[]>`SELECT id, status, attempts, lease_token, version FROM jobs WHERE id = ANY(${ids}::uuid[]) ORDER BY id`;
const metric = async (series: string) => {
  const text = (await setup.env.http().get("/metrics")).text;
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line === undefined ? 0 : Number(line.split(" ")[1]);
};

/** Claims everything of `queue` as a well-behaved worker, completes it, and returns the ids it ran. */
const drain = async (queue: string) => {
  const ran: string[] = [];
  for (;;) {
    const { jobs } = await processNext(setup.env, k.worker, { queues: [queue], max: 100 });
    if (jobs.length === 0) return ran;
    for (const j of jobs) {
      expect(j.attempts).toBe(1);
      expect((await completeJob(setup.env, k.worker, j.id, j.leaseToken)).status).toBe(200);
      ran.push(j.id);
    }
  }
};

describe("a poll whose answer is not delivered", () => {
  it("client gone while the claim runs: its jobs are claimable again at once, counted, and run once", async () => {
    const ids = await submit("gone1", 3);
    const before = await rows(ids);
    // The claim statement also updates batches (a batch's first claim starts it): a lock on that
    // table holds the claim after the poll arrived, so the client can leave before it returns.
    let unlock!: () => void;
    const held = new Promise<void>((r) => {
      unlock = r;
    });
    let locked!: () => void;
    const isLocked = new Promise<void>((r) => {
      locked = r;
    });
    const tx = setup.env.c.sql.begin(async (t) => {
      await t`LOCK TABLE batches IN SHARE MODE`;
      locked();
      await held;
    });
    await isLocked;
    const socket = rawPoll("gone1", 3);
    await until("the claim waiting on the lock", async () => {
      const [r] = await setup.env.c.sql<{ n: number }[]>`
        SELECT count(*)::int AS n FROM pg_stat_activity
        WHERE datname = current_database() AND wait_event_type = 'Lock' AND query ILIKE '%claimable%'`;
      return r!.n > 0 ? true : undefined;
    });
    socket.destroy();
    // The server (this process) sees the close on its next turns of the event loop.
    await new Promise((r) => setTimeout(r, 200));
    unlock();
    await tx;
    const t0 = Date.now();
    // Queued again after a claim (version + 1) and a release (+ 1); the lease was 300 s.
    const back = await until("the jobs claimed and queued again", async () => {
      const rs = await rows(ids);
      return rs.every((r, i) => r.status === "queued" && r.version === before[i]!.version + 2) ? rs : undefined;
    }, 10_000);
    const ms = Date.now() - t0;
    console.log(`released ${ids.length} undelivered jobs ${ms} ms after the claim could proceed (lease: 300 s)`);
    expect(ms).toBeLessThan(2000);
    for (const r of back) {
      expect(r.attempts).toBe(0); // the attempt never ran
      expect(r.leaseToken).toBeNull();
    }
    expect(await metric('jobline_leases_released_total{tenant="u",queue="gone1",reason="undelivered"}')).toBe(3);
    expect(await metric('jobline_leases_expired_total{tenant="u",queue="gone1"}')).toBe(0);
    expect((await drain("gone1")).sort()).toEqual([...ids].sort());
    expect(await metric('jobline_transitions_total{from="running",to="succeeded"}')).toBe(3);
  });

  it("client gone while a large answer is being written: its jobs are released, counted, and run once", async () => {
    // ~7.7 MB of answer: more than the socket buffers hold, so it cannot be written before the client leaves.
    const ids = await submit("gone2", 32, { blob: "x".repeat(240_000) });
    const socket = rawPoll("gone2", 32);
    socket.pause();
    await until("the jobs leased", async () => ((await rows(ids)).every((r) => r.status === "running") ? true : undefined));
    await new Promise((r) => setTimeout(r, 300));
    socket.destroy();
    await until("the jobs queued again", async () => ((await rows(ids)).every((r) => r.status === "queued") ? true : undefined), 10_000);
    expect(await metric('jobline_leases_released_total{tenant="u",queue="gone2",reason="undelivered"}')).toBe(32);
    expect((await drain("gone2")).sort()).toEqual([...ids].sort());
  });

  it("an answer that was delivered is not released", async () => {
    const ids = await submit("kept", 2);
    expect((await processNext(setup.env, k.worker, { queues: ["kept"], max: 2 })).jobs).toHaveLength(2);
    await new Promise((res) => setTimeout(res, 300));
    expect((await rows(ids)).map((j) => j.status)).toEqual(["running", "running"]);
    expect(await metric('jobline_leases_released_total{tenant="u",queue="kept",reason="undelivered"}')).toBe(0);
  });

  it("the release is fenced by the lease token: a job completed or re-leased meanwhile is untouched", async () => {
    const { releaseIfLeased } = setup.env.c.repos.jobs;
    const [a, b] = await submit("fence", 2);
    const { jobs } = await processNext(setup.env, k.worker, { queues: ["fence"], max: 2 });
    const ja = jobs.find((j) => j.id === a)!;
    const jb = jobs.find((j) => j.id === b)!;
    expect((await completeJob(setup.env, k.worker, a!, ja.leaseToken)).status).toBe(200);
    const wrong = "00000000-0000-4000-8000-000000000000";
    const released = await releaseIfLeased([ja, { id: b!, leaseToken: wrong }]);
    expect(released).toEqual([]);
    const status = async (id: string) => (await rows([id]))[0]!.status;
    expect(await status(a!)).toBe("succeeded");
    expect(await status(b!)).toBe("running");
    expect((await releaseIfLeased([jb])).map((j) => j.id)).toEqual([b]);
  });
});
