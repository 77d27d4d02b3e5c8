import client from "prom-client";
import type { Queryable } from "./db/client.js";
import { countJobsByQueue, type DepthRow, type OldestRow, oldestClaimableAge } from "./repositories/queueSample.js";

export interface MetricsOptions {
  /** false: series carry no tenant label; queue figures are summed across tenants. */
  tenantLabel: boolean;
  /** How often the counting gauges may query the database, whatever the number of scrapes. */
  samplePeriodMs: number;
  /** Scrapes within this many ms of a rendering share it (0: each scrape renders). */
  renderCacheMs: number;
}

type Registry = client.Registry;
type QueueRow = { tenant: string; queue: string };

const counter = <L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[] = []) =>
  new client.Counter<L>({ name, help, labelNames, registers: [registry] });
const histogram = <L extends string>(registry: Registry, name: string, help: string, labelNames: readonly L[], buckets: number[]) =>
  new client.Histogram<L>({ name, help, labelNames, buckets, registers: [registry] });

/** Buckets of the per-job durations: from a few ms to an hour. */
const JOB_SECONDS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600];

/** One registry per container, so several apps in one test process do not collide. */
export function createMetrics(sql: Queryable, opts: MetricsOptions) {
  const registry = new client.Registry();
  const byQueue = opts.tenantLabel ? ["tenant", "queue"] : ["queue"];
  const queueLabels = (r: QueueRow): Record<string, string> =>
    opts.tenantLabel ? { tenant: r.tenant, queue: r.queue } : { queue: r.queue };
  const events = eventMetrics(registry);
  const jobs = jobMetrics(registry, byQueue, queueLabels);
  client.collectDefaultMetrics({ register: registry });
  const sampler = createSampler(async () => ({
    depth: await countJobsByQueue(sql, opts.tenantLabel),
    oldest: await oldestClaimableAge(sql, opts.tenantLabel),
  }), opts.samplePeriodMs);
  queueGauges(registry, sampler, opts.samplePeriodMs, byQueue, queueLabels);
  return { registry, render: cachedRender(registry, Math.min(opts.renderCacheMs, opts.samplePeriodMs)), ...events, sampler, ...jobs };
}

/** Counters of what the service did, by outcome; none is per queue. */
function eventMetrics(registry: Registry) {
  return {
    claims: counter(registry, "jobline_claims_total",
      "Claim attempts by outcome (claimed counts jobs; empty and lost_race count requests)", ["outcome"] as const),
    transitions: counter(registry, "jobline_transitions_total", "Job state transitions that won, by from and to", ["from", "to"] as const),
    racesLost: counter(registry, "jobline_races_lost_total",
      "Transitions that lost a race (the typed loss, not an error), by operation", ["operation"] as const),
    webhookDeliveries: counter(registry, "jobline_webhook_deliveries_total", "Webhook delivery attempts by outcome", ["outcome"] as const),
    reaperRecoveries: counter(registry, "jobline_reaper_recoveries_total",
      "Expired leases recovered by the reaper, by resulting status", ["to"] as const),
    pollStatements: counter(registry, "jobline_poll_statements_total",
      "Statements polls ran: claim (alone or with acknowledgements) and promote (held jobs falling due), by whether they found any job",
      ["statement", "outcome"] as const),
    pollWakes: counter(registry, "jobline_poll_wakes_total",
      "Claims a waiting long poll ran when it woke, by what woke it (announcement: a job was announced; recheck: its periodic re-check) and whether it found a job",
      ["by", "outcome"] as const),
    httpDuration: histogram(registry, "jobline_http_request_duration_seconds", "HTTP request latency", ["method", "route", "status"] as const,
      [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30]),
  };
}

/**
 * A statement's rows by (tenant, queue, kind), so each labelled series is looked up once per
 * statement: prom-client hashes the labels on every call, most of its cost per job.
 */
function bySeries<R extends QueueRow & { kind: string }>(rows: ReadonlyArray<R>, labelsOf: (r: R) => Record<string, string>) {
  const groups = new Map<string, { labels: Record<string, string>; rows: R[] }>();
  for (const r of rows) {
    const key = `${r.tenant}\u0000${r.queue}\u0000${r.kind}`;
    const g = groups.get(key);
    if (g) g.rows.push(r);
    else groups.set(key, { labels: labelsOf(r), rows: [r] });
  }
  return groups.values();
}

/** Per-queue figures of leases and attempts, fed with the rows the statements return. */
function jobMetrics(registry: Registry, byQueue: string[], queueLabels: (r: QueueRow) => Record<string, string>) {
  const leasesExpired = counter(registry, "jobline_leases_expired_total",
    "Leases the reaper found expired, by queue (whatever it then did with the job)", byQueue);
  const leasesReleased = counter(registry, "jobline_leases_released_total",
    "Leases given back before expiry, by queue and reason (undelivered: the poll's answer never reached its client)", [...byQueue, "reason"]);
  const byQueueKind = [...byQueue, "kind"];
  const queueWait = histogram(registry, "jobline_job_queue_wait_seconds",
    "From submit (or runAt, when later) to the start of an attempt, by queue and kind", byQueueKind, JOB_SECONDS);
  const runTime = histogram(registry, "jobline_job_run_seconds",
    "From the start of an attempt to its outcome (complete, fail, or the reaper), by queue and kind", byQueueKind, JOB_SECONDS);
  const outcomes = counter(registry, "jobline_job_outcomes_total",
    "Attempts that ended, by queue, kind and outcome (succeeded, failed, cancelled; queued: retried)", [...byQueueKind, "outcome"]);
  return {
    /** Attempts the claim statement started (its rows, as returned). */
    jobsStarted: (rows: ReadonlyArray<StartedRow>) => {
      for (const g of bySeries(rows.filter((r) => r.startedAt), (r) => ({ ...queueLabels(r), kind: r.kind }))) {
        const series = queueWait.labels(g.labels);
        for (const r of g.rows) series.observe(Math.max(0, r.startedAt!.getTime() - Math.max(r.createdAt.getTime(), r.runAt.getTime())) / 1000);
      }
    },
    /** Attempts a finalising statement ended (its rows, as returned). */
    jobsFinished: (rows: ReadonlyArray<FinishedRow>) => {
      for (const g of bySeries(rows, (r) => ({ ...queueLabels(r), kind: r.kind }))) {
        // Looked up on its first observation: a job cancelled before it started adds no series.
        let series: ReturnType<typeof runTime.labels> | undefined;
        const ended = new Map<string, number>();
        for (const r of g.rows) {
          ended.set(r.status, (ended.get(r.status) ?? 0) + 1);
          const end = r.finishedAt ?? r.updatedAt;
          if (!r.startedAt || !end) continue;
          series ??= runTime.labels(g.labels);
          series.observe(Math.max(0, end.getTime() - r.startedAt.getTime()) / 1000);
        }
        for (const [outcome, n] of ended) outcomes.inc({ ...g.labels, outcome }, n);
      }
    },
    leaseExpired: (r: QueueRow) => leasesExpired.inc(queueLabels(r)),
    leaseReleased: (r: QueueRow, reason: "undelivered") => leasesReleased.inc({ ...queueLabels(r), reason }),
  };
}

/** The counting gauges: each scrape reads the shared sample (createSampler), never the table. */
function queueGauges(
  registry: Registry,
  sampler: Sampler,
  periodMs: number,
  byQueue: string[],
  queueLabels: (r: QueueRow) => Record<string, string>,
) {
  const samples = counter(registry, "jobline_metrics_samples_total",
    "Counting queries the metrics sampler ran (at most one per sample period, whatever the number of scrapes)");
  sampler.onRun = () => samples.inc();
  new client.Gauge({
    name: "jobline_queue_depth",
    help: `Jobs per queue and status, sampled at most every ${periodMs} ms`,
    labelNames: [...byQueue, "status"],
    registers: [registry],
    async collect() {
      const { depth } = await sampler.get();
      this.reset();
      for (const r of depth) this.set({ ...queueLabels(r), status: r.status }, r.n);
    },
  });
  new client.Gauge({
    name: "jobline_oldest_queued_age_seconds",
    help: `Age of the oldest claimable queued job per queue, sampled at most every ${periodMs} ms`,
    labelNames: byQueue,
    registers: [registry],
    async collect() {
      const { oldest, at } = await sampler.get();
      this.reset();
      // Aged to now, so the figure grows between samples as the job waits.
      for (const r of oldest) this.set(queueLabels(r), Math.max(0, r.age + (Date.now() - at) / 1000));
    },
  });
}

// Rendering the registry costs the API a few ms of CPU; scrapes close together share one.
function cachedRender(registry: Registry, cacheMs: number) {
  let rendered: { at: number; text: Promise<string> } | null = null;
  return (): Promise<string> => {
    const now = Date.now();
    if (rendered && now - rendered.at < cacheMs) return rendered.text;
    const text = registry.metrics();
    const entry = { at: now, text };
    rendered = entry;
    text.catch(() => {
      if (rendered === entry) rendered = null;
    });
    return text;
  };
}

type StartedRow = { tenant: string; queue: string; kind: string; createdAt: Date; runAt: Date; startedAt: Date | null };
type FinishedRow = { tenant: string; queue: string; kind: string; status: string; startedAt: Date | null; finishedAt: Date | null; updatedAt?: Date };

/** The sampler has no fresh figures and could not get them: the scrape fails rather than read as "no queues". */
export class SampleUnavailable extends Error {}

/** How long a scrape waits for a sample in flight before it answers 503. */
const SCRAPE_WAIT_MS = 5000;

/**
 * Counting figures shared by every scrape of the process: a scrape within `periodMs` of the
 * last sample reads it; a later one starts the next sample, and every scrape meanwhile waits
 * for that same one. So at most one sample is in flight and at most one starts per period,
 * and scrapes cost the database nothing that grows with the table. Nothing runs unscraped.
 */
export function createSampler(take: () => Promise<{ depth: DepthRow[]; oldest: OldestRow[] }>, periodMs: number) {
  type Sample = { depth: DepthRow[]; oldest: OldestRow[]; at: number };
  let last: Sample | null = null;
  let running: Promise<Sample> | null = null;
  // After a failure, the next try waits a little (not a whole period): a failed sample is no data.
  let failed: { at: number; error: unknown } | null = null;
  const retryMs = Math.min(periodMs, 1000);
  const self = {
    onRun: () => {},
    async get(): Promise<Sample> {
      const now = Date.now();
      if (last && now - last.at < periodMs) return last;
      if (!running) {
        if (failed && now - failed.at < retryMs) throw new SampleUnavailable("queue figures unavailable", { cause: failed.error });
        running = run();
      }
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new SampleUnavailable(`no queue figures within ${SCRAPE_WAIT_MS} ms`)), SCRAPE_WAIT_MS);
      });
      try {
        return await Promise.race([running, timeout]);
      } finally {
        clearTimeout(timer);
      }
    },
  };
  function run(): Promise<Sample> {
    const at = Date.now();
    self.onRun();
    return take().then(
      (s) => {
        running = null;
        failed = null;
        last = { ...s, at };
        return last;
      },
      (e: unknown) => {
        running = null;
        failed = { at: Date.now(), error: e };
        throw new SampleUnavailable("queue figures unavailable", { cause: e });
      },
    );
  }
  return self;
}

type Sampler = ReturnType<typeof createSampler>;
export type Metrics = ReturnType<typeof createMetrics>;
