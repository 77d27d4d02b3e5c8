import client from "prom-client";
import type { JobsRepository } from "./repositories/jobs.js";

/** One registry per container, so several apps in one test process do not collide. */
export function createMetrics(jobs: Pick<JobsRepository, "countByQueue" | "oldestClaimableByQueue">) {
  const registry = new client.Registry();
  const claims = new client.Counter({
    name: "jobline_claims_total",
    help: "Claim attempts by outcome (claimed counts jobs; empty and lost_race count requests)",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const transitions = new client.Counter({
    name: "jobline_transitions_total",
    help: "Job state transitions that won, by from and to",
    labelNames: ["from", "to"] as const,
    registers: [registry],
  });
  const racesLost = new client.Counter({
    name: "jobline_races_lost_total",
    help: "Transitions that lost a race (the typed loss, not an error), by operation",
    labelNames: ["operation"] as const,
    registers: [registry],
  });
  const webhookDeliveries = new client.Counter({
    name: "jobline_webhook_deliveries_total",
    help: "Webhook delivery attempts by outcome",
    labelNames: ["outcome"] as const,
    registers: [registry],
  });
  const reaperRecoveries = new client.Counter({
    name: "jobline_reaper_recoveries_total",
    help: "Expired leases recovered by the reaper, by resulting status",
    labelNames: ["to"] as const,
    registers: [registry],
  });
  const pollStatements = new client.Counter({
    name: "jobline_poll_statements_total",
    help: "Statements polls ran: claim (alone or with acknowledgements) and promote (held jobs falling due), by whether they found any job",
    labelNames: ["statement", "outcome"] as const,
    registers: [registry],
  });
  const pollWakes = new client.Counter({
    name: "jobline_poll_wakes_total",
    help: "Claims a waiting long poll ran when it woke, by what woke it (announcement: a job was announced; recheck: its periodic re-check) and whether it found a job",
    labelNames: ["by", "outcome"] as const,
    registers: [registry],
  });
  const httpDuration = new client.Histogram({
    name: "jobline_http_request_duration_seconds",
    help: "HTTP request latency",
    labelNames: ["method", "route", "status"] as const,
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10, 30],
    registers: [registry],
  });
  new client.Gauge({
    name: "jobline_queue_depth",
    help: "Jobs per queue and status",
    labelNames: ["queue", "status"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await jobs.countByQueue(null).catch(() => []);
      for (const r of rows) this.set({ queue: r.queue, status: r.status }, r.n);
    },
  });
  new client.Gauge({
    name: "jobline_oldest_queued_age_seconds",
    help: "Age of the oldest claimable queued job per queue",
    labelNames: ["queue"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const rows = await jobs.oldestClaimableByQueue(null).catch(() => []);
      for (const r of rows) this.set({ queue: r.queue }, Math.max(0, r.age));
    },
  });
  return { registry, claims, pollStatements, pollWakes, transitions, racesLost, webhookDeliveries, reaperRecoveries, httpDuration };
}

export type Metrics = ReturnType<typeof createMetrics>;
