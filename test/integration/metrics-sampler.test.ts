// /metrics: scrapes read a shared sample (counted with pg_stat_statements on the real server),
// the optional bearer token, the tenant label switch, and a failed scrape when PostgreSQL is away.
import { beforeAll, describe, expect, it } from "vitest";
import { adminUrl } from "../helpers/db.js";
import postgres from "postgres";
import { type TestEnv, useTestEnvs } from "../helpers/app.js";
import { parseMetrics } from "../helpers/metrics.js";
import { until } from "../helpers/until.js";

const open = useTestEnvs();

const submit = async (env: TestEnv, key: string, queue: string, n: number) => {
  for (let i = 0; i < n; i++) expect((await env.http().post("/v1/jobs").set("authorization", key).send({ queue, kind: "k" })).status).toBe(201);
};

describe("the queue sample", () => {
  const PERIOD = 1000;
  let env: TestEnv;
  beforeAll(async () => {
    env = await open("metrics_sampler", { JOBLINE_METRICS_SAMPLE_MS: PERIOD });
    await env.c.sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`;
    await submit(env, await env.key("s", "client"), "sq", 5);
  });

  /** Counting statements run in this database so far, as PostgreSQL itself recorded them. */
  const countingStatements = async () => {
    const [r] = await env.c.sql<{ n: number }[]>`
      SELECT coalesce(sum(calls), 0)::int AS n FROM pg_stat_statements
      WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND query ILIKE '%count(*)::int AS n FROM jobs%'`;
    return r!.n;
  };

  it("20 concurrent scrape loops cause at most one counting query per sampling period", async () => {
    const before = await countingStatements();
    const t0 = Date.now();
    let scrapes = 0;
    const loop = async () => {
      for (let mine = 0; Date.now() - t0 < 3000 || mine < 3; mine++) {
        const r = await env.http().get("/metrics");
        expect(r.status).toBe(200);
        expect(r.text).toContain('jobline_queue_depth{tenant="s",queue="sq",status="queued"} 5');
        scrapes++;
      }
    };
    await Promise.all(Array.from({ length: 20 }, loop));
    const elapsed = Date.now() - t0;
    const ran = (await countingStatements()) - before;
    const periods = Math.ceil(elapsed / PERIOD);
    console.log(`${scrapes} scrapes in ${elapsed} ms ran ${ran} counting statements (${periods} periods)`);
    expect(scrapes).toBeGreaterThan(2 * periods);
    expect(ran).toBeGreaterThanOrEqual(1);
    expect(ran).toBeLessThanOrEqual(periods + 1);
    // The sampler's own count agrees with PostgreSQL's.
    const m = parseMetrics((await env.http().get("/metrics")).text);
    expect(m.get("jobline_metrics_samples_total")).toBeLessThanOrEqual(periods + 2);
  });

  it("a scrape after the period sees new jobs", async () => {
    await submit(env, await env.key("s", "client"), "sq", 1);
    await new Promise((r) => setTimeout(r, PERIOD + 50));
    expect((await env.http().get("/metrics")).text).toContain('jobline_queue_depth{tenant="s",queue="sq",status="queued"} 6');
  });
});

describe("JOBLINE_METRICS_CACHE_MS", () => {
  it("scrapes close together share one rendering of the registry", async () => {
    const env = await open("metrics_cache", { JOBLINE_METRICS_CACHE_MS: 60_000, JOBLINE_METRICS_SAMPLE_MS: 60_000 });
    const registry = env.c.metrics.registry;
    const metrics = registry.metrics.bind(registry);
    let renders = 0;
    registry.metrics = () => {
      renders++;
      return metrics();
    };
    const answers = await Promise.all(Array.from({ length: 20 }, () => env.http().get("/metrics")));
    expect(answers.every((a) => a.status === 200 && a.text === answers[0]!.text)).toBe(true);
    expect(renders).toBe(1);
  });
});

describe("JOBLINE_METRICS_TOKEN", () => {
  it("when set, /metrics needs Authorization: Bearer <token>", async () => {
    const token = "metrics-token-0123456789";
    const env = await open("metrics_token", { JOBLINE_METRICS_TOKEN: token });
    const none = await env.http().get("/metrics");
    expect(none.status).toBe(401);
    expect(none.headers["content-type"]).toContain("application/problem+json");
    expect(none.headers["www-authenticate"]).toBe("Bearer");
    expect((await env.http().get("/metrics").set("authorization", "Bearer metrics-token-0123456780")).status).toBe(401);
    // An API key, even an admin's, is not the metrics token.
    expect((await env.http().get("/metrics").set("authorization", env.admin)).status).toBe(401);
    const ok = await env.http().get("/metrics").set("authorization", `Bearer ${token}`);
    expect(ok.status).toBe(200);
    expect(ok.text).toContain("jobline_claims_total");
  });
});

describe("JOBLINE_METRICS_TENANT_LABEL", () => {
  it("false: no series carries a tenant; queue figures are summed across tenants", async () => {
    const env = await open("metrics_notenant", { JOBLINE_METRICS_TENANT_LABEL: false });
    await submit(env, await env.key("alpha", "client"), "shared", 2);
    await submit(env, await env.key("beta", "client"), "shared", 3);
    const text = (await env.http().get("/metrics")).text;
    expect(text).not.toContain("tenant=");
    expect(text).not.toMatch(/alpha|beta/);
    expect(parseMetrics(text).get('jobline_queue_depth{queue="shared",status="queued"}')).toBe(5);
    expect(parseMetrics(text).has('jobline_oldest_queued_age_seconds{queue="shared"}')).toBe(true);
  });

  it("true (the default): one series per tenant", async () => {
    const env = await open("metrics_tenant");
    await submit(env, await env.key("alpha", "client"), "shared", 2);
    await submit(env, await env.key("beta", "client"), "shared", 3);
    const m = parseMetrics((await env.http().get("/metrics")).text);
    expect(m.get('jobline_queue_depth{tenant="alpha",queue="shared",status="queued"}')).toBe(2);
    expect(m.get('jobline_queue_depth{tenant="beta",queue="shared",status="queued"}')).toBe(3);
  });
});

describe("a scrape while PostgreSQL is unreachable", () => {
  it("is answered from a fresh sample, and fails (503) once the sample is stale, rather than read as no queues", async () => {
    const env = await open("metrics_outage", { JOBLINE_METRICS_SAMPLE_MS: 1000 });
    await submit(env, await env.key("o", "client"), "oq", 2);
    const name = new URL(env.url).pathname.slice(1);
    const admin = postgres(adminUrl(), { max: 1, onnotice: () => {} });
    try {
      expect((await env.http().get("/metrics")).status).toBe(200);
      // The database refuses every connection of the app from now on.
      await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS false`);
      await admin`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${name} AND pid <> pg_backend_pid()`;
      const t0 = Date.now();
      const fresh = await env.http().get("/metrics");
      if (Date.now() - t0 < 900) {
        expect(fresh.status).toBe(200);
        expect(fresh.text).toContain('jobline_queue_depth{tenant="o",queue="oq",status="queued"} 2');
      }
      await new Promise((r) => setTimeout(r, 1100));
      const stale = await env.http().get("/metrics");
      expect(stale.status).toBe(503);
      expect(stale.headers["content-type"]).toContain("application/problem+json");
      expect(stale.body.code).toBe("unavailable");
      expect(stale.headers["retry-after"]).toBe("1");

      await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      const back = await until("a scrape with figures again", async () => {
        const r = await env.http().get("/metrics");
        return r.status === 200 ? r.text : undefined;
      }, 30_000, 200);
      expect(back).toContain('jobline_queue_depth{tenant="o",queue="oq",status="queued"} 2');
    } finally {
      await admin.unsafe(`ALTER DATABASE ${name} ALLOW_CONNECTIONS true`);
      await admin.end();
    }
  });
});
