import parsePrometheusTextFormat, { type Family, type Sample } from "parse-prometheus-text-format";
import { beforeAll, describe, expect, it } from "vitest";
import { Jobline, NonRetryableError } from "../../clients/typescript/src/index.js";
import { useJobline } from "./helpers/useJobline.js";
import { api, type Jobline as Proc, until } from "./helpers/util.js";

/**
 * Logs and metrics of real processes: `jobline serve` (JSON log lines, one per request) and
 * `jobline worker` with in-process handlers, serving /metrics on JOBLINE_WORKER_PORT. The
 * expositions are read with a Prometheus text-format parser, after real jobs ran.
 */

const t = useJobline("observability");
let apiProc: Proc;
let worker: Proc;

beforeAll(async () => {
  apiProc = await t.start("serve", { LOG_LEVEL: "info" });
  worker = await t.start("worker", { JOBLINE_HANDLERS_MODULE: "./test/e2e/helpers/crash-handlers.ts" });
}, 120_000);

async function scrape(base: string): Promise<Family[] & { text: string }> {
  const r = await fetch(`${base}/metrics`);
  expect(r.status).toBe(200);
  const text = await r.text();
  return Object.assign(parsePrometheusTextFormat(text), { text });
}
/**
 * One series of a histogram. The parser keeps a histogram's labels only when it has one
 * series (it folds every series' buckets together), so the series is cut out first and its
 * labels (the ones asked for, all of them) taken off.
 */
function histogram(text: string, name: string, labels: Record<string, string>): Sample | undefined {
  const lines = text.split("\n");
  const want = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  const series = lines.filter((l) => {
    if (!new RegExp(`^${name}_(bucket|sum|count)\\{`).test(l)) return false;
    const own = l.slice(l.indexOf("{") + 1, l.indexOf("}")).split(",").filter((x) => !x.startsWith("le="));
    return own.length === want.length && want.every((w) => own.includes(w));
  });
  if (series.length === 0) return undefined;
  const bare = series.map((l) => l.replace(/\{[^}]*\}/, (m) => {
    const le = /le="[^"]*"/.exec(m);
    return le ? `{${le[0]}}` : "";
  }));
  const [f] = parsePrometheusTextFormat([`# TYPE ${name} histogram`, ...bare, ""].join("\n"));
  expect(f?.type).toBe("HISTOGRAM");
  return f?.metrics[0];
}
const family = (fams: Family[], name: string) => {
  const f = fams.find((x) => x.name === name);
  if (!f) throw new Error(`no ${name} in the exposition`);
  return f;
};
const sample = (f: Family, labels: Record<string, string>): Sample | undefined =>
  f.metrics.find((m) => Object.entries(labels).every(([k, v]) => m.labels?.[k] === v));

describe("metrics after real jobs", () => {
  it("the worker process's own port: wait and run-time histograms, outcomes by kind, process metrics", async () => {
    const key = await t.key(apiProc, "obs", "client");
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await api(apiProc.url, key, "POST", "/v1/jobs", { queue: "crash", kind: "slow", payload: { ms: 200 } })).body.id);
    await until("three jobs succeed", async () => {
      const all = await Promise.all(ids.map((id) => api(apiProc.url, key, "GET", `/v1/jobs/${id}`)));
      return all.every((r) => r.body.status === "succeeded") || undefined;
    }, 60_000);

    const fams = await scrape(worker.url);
    const series = { tenant: "obs", queue: "crash", kind: "slow" };
    const wait = histogram(fams.text, "jobline_job_queue_wait_seconds", series);
    expect(family(fams, "jobline_job_queue_wait_seconds").type).toBe("HISTOGRAM");
    expect(Number(wait?.count)).toBe(3);
    expect(Number(wait?.buckets?.["+Inf"])).toBe(3);
    const run = histogram(fams.text, "jobline_job_run_seconds", series);
    expect(Number(run?.count)).toBe(3);
    // Each handler slept 200 ms between its claim and its completion (both stamped by the database).
    expect(Number(run?.sum)).toBeGreaterThanOrEqual(0.6);
    expect(Number(run?.buckets?.["0.1"])).toBe(0);
    expect(Number(sample(family(fams, "jobline_job_outcomes_total"), { kind: "slow", outcome: "succeeded" })?.value)).toBe(3);
    expect(family(fams, "process_cpu_user_seconds_total").type).toBe("COUNTER");
    expect(family(fams, "nodejs_eventloop_lag_seconds").type).toBe("GAUGE");
    expect(family(fams, "jobline_reaper_recoveries_total").type).toBe("COUNTER");
    expect((await fetch(`${worker.url}/healthz`)).status).toBe(200);
  }, 90_000);

  it("the API's: jobs finished over HTTP (process-next and fail), outcomes by kind", async () => {
    const keys = await Promise.all(
      (["client", "worker"] as const).map((role) => t.key(apiProc, "obs", role)),
    );
    type Kinds = { fine: { n: number }; boom: Record<string, never> };
    const client = new Jobline<Kinds>({ baseUrl: apiProc.url, apiKey: keys[0]! });
    const a = await client.submit("obs", "fine", { n: 1 });
    const b = await client.submit("obs", "boom", {});
    const w = new Jobline<Kinds>({ baseUrl: apiProc.url, apiKey: keys[1]! }).work("obs", {
      fine: async (j) => j.payload.n,
      boom: async () => {
        throw new NonRetryableError("no", { code: "boom" });
      },
    }, { waitMs: 500 });
    await until("both jobs end", async () => {
      const [x, y] = [await client.get(a.id), await client.get(b.id)];
      return (x.status === "succeeded" && y.status === "failed") || undefined;
    }, 60_000);
    await w.stop();

    const fams = await scrape(apiProc.url);
    const outcomes = family(fams, "jobline_job_outcomes_total");
    expect(Number(sample(outcomes, { queue: "obs", kind: "fine", outcome: "succeeded" })?.value)).toBe(1);
    expect(Number(sample(outcomes, { queue: "obs", kind: "boom", outcome: "failed" })?.value)).toBe(1);
    for (const kind of ["fine", "boom"]) {
      expect(Number(histogram(fams.text, "jobline_job_queue_wait_seconds", { tenant: "obs", queue: "obs", kind })?.count)).toBe(1);
      expect(Number(histogram(fams.text, "jobline_job_run_seconds", { tenant: "obs", queue: "obs", kind })?.count)).toBe(1);
    }
  }, 90_000);
});

describe("logs", () => {
  it("one JSON stream: start-up lines and one info line per request (not for probes and scrapes)", async () => {
    await api(apiProc.url, t.admin, "GET", "/v1/jobs/00000000-0000-0000-0000-000000000000");
    await fetch(`${apiProc.url}/healthz`);
    await fetch(`${apiProc.url}/metrics`);
    const lines = apiProc
      .output()
      .split("\n")
      .filter((l) => l.trim() !== "");
    const parsed = lines.map((l) => {
      try {
        return JSON.parse(l) as Record<string, unknown>;
      } catch {
        throw new Error(`not a JSON log line: ${l}`);
      }
    });
    expect(parsed.some((l) => String(l.msg).startsWith("jobline API listening on"))).toBe(true);
    const requests = parsed.filter((l) => l.msg === "request");
    expect(requests.find((l) => l.route === "/v1/jobs/:id" && l.status === 404)).toMatchObject({
      level: 30,
      method: "GET",
      reqId: expect.stringMatching(/^[0-9a-f-]{36}$/),
      durationMs: expect.any(Number),
    });
    expect(requests.filter((l) => ["/healthz", "/readyz", "/metrics"].includes(String(l.route)))).toEqual([]);
  });

  it("LOG_FORMAT=pretty renders the same lines for people", async () => {
    const p = await t.start("serve", { LOG_LEVEL: "info", LOG_FORMAT: "pretty" });
    await p.waitFor("jobline API listening on");
    const line = p.output().split("\n").find((l) => l.includes("jobline API listening on"))!;
    expect(line).toMatch(/INFO/);
    expect(() => JSON.parse(line)).toThrow();
    await p.stop();
  }, 60_000);
});
