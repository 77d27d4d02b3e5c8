import { describe, expect, it } from "vitest";
import { nextTick } from "../../src/domain/schedules.js";
import { createScheduleService } from "../../src/services/schedules.js";
import { useKeys, useTestEnv } from "../helpers/app.js";

const setup = useTestEnv("schedules_api");
const k = useKeys(setup, {
  x: ["xco", "client"],
  xAdmin: ["xco", "admin"],
  xWorker: ["xco", "worker"],
  y: ["yco", "client"],
  platform: ["*", "client"],
});

const body = (name: string, extra: object = {}) => ({ name, cron: "*/5 * * * *", job: { queue: "nightly", kind: "report" }, ...extra });
const create = async (key: string, b: object) => setup.env.http().post("/v1/schedules").set("authorization", key).send(b);

describe("schedules over HTTP", () => {
  it("creates with defaults, shows nextRunAt on the cron's next tick, and reads it back; Location set", async () => {
    const before = Date.now();
    const r = await create(k.x, body("every-five"));
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    expect(r.headers.location).toBe(`/v1/schedules/${r.body.id}`);
    expect(r.body).toMatchObject({
      tenant: "xco",
      name: "every-five",
      timezone: "UTC",
      overlap: "allow",
      catchUp: "latest",
      paused: false,
      lastRunAt: null,
      lastJobId: null,
      job: { queue: "nightly", kind: "report", payload: {} },
    });
    const next = Date.parse(r.body.nextRunAt);
    expect(next).toBeGreaterThan(before);
    expect(next - before).toBeLessThanOrEqual(5 * 60_000);
    expect(new Date(next).getUTCMinutes() % 5).toBe(0);
    expect(new Date(next).getUTCSeconds()).toBe(0);
    const g = await setup.env.http().get(`/v1/schedules/${r.body.id}`).set("authorization", k.x);
    expect(g.status).toBe(200);
    expect(g.body).toEqual(r.body);
  });

  it("a name is unique per tenant: 409 for the same tenant, fine for another", async () => {
    expect((await create(k.x, body("dup"))).status).toBe(201);
    const again = await create(k.x, body("dup", { cron: "0 * * * *" }));
    expect(again.status).toBe(409);
    expect(again.body.code).toBe("name_taken");
    expect(again.headers["content-type"]).toMatch(/^application\/problem\+json/);
    expect((await create(k.y, body("dup"))).status).toBe(201);
    // A rename onto a taken name is 409 too, and changes nothing.
    const other = await create(k.x, body("other"));
    const p = await setup.env.http().patch(`/v1/schedules/${other.body.id}`).set("authorization", k.x).send({ name: "dup" });
    expect(p.status).toBe(409);
    expect((await setup.env.http().get(`/v1/schedules/${other.body.id}`).set("authorization", k.x)).body.name).toBe("other");
  });

  it("refuses a bad cron, an unknown time zone, a cron with no future tick, unknown fields and runAt in the template: 400", async () => {
    for (const b of [
      body("bad1", { cron: "* * *" }),
      body("bad2", { cron: "61 * * * *" }),
      body("bad3", { timezone: "Mars/Olympus" }),
      body("bad4", { cron: "0 0 30 2 *" }),
      body("bad5", { cron: "0 0 0 * * * 2030" }),
      body("bad6", { overlap: "queue" }),
      body("bad7", { job: { queue: "q", kind: "k", runAt: new Date().toISOString() } }),
      body("bad8", { surprise: 1 }),
    ]) {
      const r = await create(k.x, b);
      expect(r.status, `${JSON.stringify(b)} → ${JSON.stringify(r.body)}`).toBe(400);
      expect(r.headers["content-type"]).toMatch(/^application\/problem\+json/);
    }
    const big = await create(k.x, body("big", { job: { queue: "q", kind: "k", payload: { s: "x".repeat(300 * 1024) } } }));
    expect([400, 413]).toContain(big.status);
    const [n] = await setup.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM schedules WHERE name LIKE 'bad%' OR name = 'big'`;
    expect(n!.n).toBe(0);
  });

  it("is a client action: admins may too, workers may not", async () => {
    expect((await create(k.xAdmin, body("by-admin"))).status).toBe(201);
    expect((await create(k.xWorker, body("by-worker"))).status).toBe(403);
    expect((await setup.env.http().get("/v1/schedules").set("authorization", k.xWorker)).status).toBe(403);
  });

  it("another tenant's schedule is 404 on GET, PATCH and DELETE and absent from its list; a platform key names the tenant", async () => {
    const y = await create(k.y, body("y-only"));
    for (const r of [
      await setup.env.http().get(`/v1/schedules/${y.body.id}`).set("authorization", k.x),
      await setup.env.http().patch(`/v1/schedules/${y.body.id}`).set("authorization", k.x).send({ paused: true }),
      await setup.env.http().delete(`/v1/schedules/${y.body.id}`).set("authorization", k.x),
    ]) {
      expect(r.status).toBe(404);
      expect(r.body.code).toBe("not_found");
    }
    const list = await setup.env.http().get("/v1/schedules?limit=500").set("authorization", k.x);
    expect(list.body.items.map((s: { id: string }) => s.id)).not.toContain(y.body.id);
    expect((await setup.env.http().get(`/v1/schedules/${y.body.id}`).set("authorization", k.y)).body.paused).toBe(false);
    const p = await create(k.platform, body("platform-made", { tenant: "yco" }));
    expect(p.body.tenant).toBe("yco");
    expect((await create(k.x, body("x-names-y", { tenant: "yco" }))).status).toBe(400);
  });

  it("lists newest first as { items, nextCursor } with keyset pages that cover every schedule once", async () => {
    const t = await setup.env.key("pages", "client");
    for (let i = 0; i < 7; i++) expect((await create(t, body(`p${i}`))).status).toBe(201);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const r: { status: number; body: { items: Array<{ name: string }>; nextCursor: string | null } } = await setup.env
        .http()
        .get(`/v1/schedules?limit=3${cursor ? `&cursor=${cursor}` : ""}`)
        .set("authorization", t);
      expect(r.status).toBe(200);
      seen.push(...r.body.items.map((s) => s.name));
      cursor = r.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual(["p6", "p5", "p4", "p3", "p2", "p1", "p0"]);
    expect((await setup.env.http().get("/v1/schedules?cursor=nope").set("authorization", t)).status).toBe(400);
  });

  it("PATCH pauses (nextRunAt null) and resumes from the next tick after now; DELETE is 204 then 404", async () => {
    const s = await create(k.x, body("pausable", { cron: "0 3 * * *", timezone: "Europe/Berlin" }));
    const paused = await setup.env.http().patch(`/v1/schedules/${s.body.id}`).set("authorization", k.x).send({ paused: true });
    expect(paused.status).toBe(200);
    expect(paused.body).toMatchObject({ paused: true, nextRunAt: null });
    const resumed = await setup.env.http().patch(`/v1/schedules/${s.body.id}`).set("authorization", k.x).send({ paused: false });
    expect(resumed.body).toMatchObject({ paused: false, nextRunAt: s.body.nextRunAt });
    // A new cron starts from its next tick after now.
    const want = nextTick("0 4 * * *", "Europe/Berlin", new Date());
    const changed = await setup.env.http().patch(`/v1/schedules/${s.body.id}`).set("authorization", k.x).send({ cron: "0 4 * * *", job: { queue: "q2", kind: "k2" } });
    expect(changed.body).toMatchObject({ cron: "0 4 * * *", job: { queue: "q2", kind: "k2", payload: {} }, nextRunAt: want!.toISOString() });
    const d = await setup.env.http().delete(`/v1/schedules/${s.body.id}`).set("authorization", k.x);
    expect(d.status).toBe(204);
    expect((await setup.env.http().delete(`/v1/schedules/${s.body.id}`).set("authorization", k.x)).status).toBe(404);
    expect((await setup.env.http().get(`/v1/schedules/${s.body.id}`).set("authorization", k.x)).status).toBe(404);
  });

  it("a tick's job carries scheduleId and scheduledFor, and the schedule shows lastRunAt and lastJobId", async () => {
    const s = await create(k.x, body("runs", { job: { queue: "ticks", kind: "k", payload: { a: 1 }, priority: 3 } }));
    const due = new Date(s.body.nextRunAt);
    // The scheduler's clock, moved to the tick (no waiting for it).
    const svc = createScheduleService({ sql: setup.env.c.sql, jobs: setup.env.c.repos.jobs, notifier: setup.env.c.notifier, graceMs: 10_000 });
    const made = await svc.runDue(due);
    const mine = made.filter((j) => j.scheduleId === s.body.id);
    expect(mine).toHaveLength(1);
    const job = await setup.env.http().get(`/v1/jobs/${mine[0]!.id}`).set("authorization", k.x);
    expect(job.body).toMatchObject({ scheduleId: s.body.id, scheduledFor: due.toISOString(), queue: "ticks", payload: { a: 1 }, priority: 3, tenant: "xco" });
    const after = await setup.env.http().get(`/v1/schedules/${s.body.id}`).set("authorization", k.x);
    expect(after.body).toMatchObject({ lastRunAt: due.toISOString(), lastJobId: mine[0]!.id });
    expect(Date.parse(after.body.nextRunAt)).toBe(due.getTime() + 5 * 60_000);
    // A submitted job has neither.
    const plain = await setup.env.http().post("/v1/jobs").set("authorization", k.x).send({ queue: "ticks", kind: "k" });
    expect(plain.body).toMatchObject({ scheduleId: null, scheduledFor: null });
  });
});
