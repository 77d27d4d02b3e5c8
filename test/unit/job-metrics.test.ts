import { describe, expect, it } from "vitest";
import type { Queryable } from "../../src/db/client.js";
import { createMetrics } from "../../src/metrics.js";

// The per-job series are fed a statement's rows at once, grouped by series: every row must still
// count once, under its own kind and outcome.
const at = (ms: number) => new Date(Date.UTC(2026, 0, 1) + ms);
const row = (kind: string, status: string, startMs: number | null, endMs: number) => ({
  tenant: "t",
  queue: "q",
  kind,
  status,
  createdAt: at(0),
  runAt: at(0),
  startedAt: startMs === null ? null : at(startMs),
  finishedAt: at(endMs),
});

type Value = { value: number; labels: Record<string, string | number>; metricName?: string };
async function values(m: ReturnType<typeof createMetrics>, name: string): Promise<Value[]> {
  const metric = m.registry.getSingleMetric(name);
  return metric ? ((await metric.get()).values as Value[]) : [];
}

describe("per-job metrics from a statement's rows", () => {
  it("counts each row once under its kind and outcome; a job that never started adds no run time", async () => {
    const m = createMetrics({} as Queryable, { tenantLabel: true, samplePeriodMs: 60_000, renderCacheMs: 0 });
    const rows = [row("a", "succeeded", 10, 30), row("b", "failed", 20, 70), row("a", "succeeded", 5, 6), row("a", "cancelled", null, 50), row("b", "succeeded", 1, 2)];
    m.jobsStarted(rows);
    m.jobsFinished(rows);
    const outcomes = await values(m, "jobline_job_outcomes_total");
    const count = (kind: string, outcome: string) => outcomes.find((v) => v.labels.kind === kind && v.labels.outcome === outcome)?.value;
    expect([count("a", "succeeded"), count("a", "cancelled"), count("b", "failed"), count("b", "succeeded")]).toEqual([2, 1, 1, 1]);
    const sums = (vs: Value[], kind: string) =>
      vs.filter((v) => v.labels.kind === kind && v.metricName?.endsWith("_count")).map((v) => v.value);
    const run = await values(m, "jobline_job_run_seconds");
    expect([sums(run, "a"), sums(run, "b")]).toEqual([[2], [2]]);
    expect(run.find((v) => v.metricName?.endsWith("_sum") && v.labels.kind === "b")?.value).toBeCloseTo(0.051, 6);
    const wait = await values(m, "jobline_job_queue_wait_seconds");
    expect([sums(wait, "a"), sums(wait, "b")]).toEqual([[2], [2]]);
  });
});
