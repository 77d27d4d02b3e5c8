import type { Logger } from "pino";
import { releaseUndelivered } from "./services/undelivered.js";
import type { Config } from "./config.js";
import { connect, type Database, listenClient } from "./db/client.js";
import { createLogger } from "./logger.js";
import { createMetrics } from "./metrics.js";
import { apiKeysRepository } from "./repositories/apiKeys.js";
import { batchesRepository } from "./repositories/batches.js";
import { jobsRepository } from "./repositories/jobs.js";
import { outboxRepository } from "./repositories/outbox.js";
import { tenantsRepository } from "./repositories/tenants.js";
import { createAuthService } from "./services/auth.js";
import { createBatchService } from "./services/batches.js";
import { createJobService } from "./services/jobs.js";
import { createMaintenanceService } from "./services/maintenance.js";
import { createNotifier } from "./services/notifier.js";
import { queuesRepository } from "./repositories/queues.js";
import { createFinishedWaits, FINISHED_CHANNEL } from "./services/finishedWaits.js";
import { createQueueService } from "./services/queues.js";
import { createCappedQueues } from "./services/queues/capped.js";
import { createRetentionService } from "./services/retention.js";
import { createScheduleService } from "./services/schedules.js";
import { createTenantService } from "./services/tenants.js";
import { createWebhookDelivery } from "./services/webhooks.js";

/**
 * Repositories and services for both the API and the worker process. No
 * fastify here: HTTP is one adapter over these services, the worker another.
 */
export function createContainer(config: Config, databaseUrl: string, opts: { application?: string; logger?: Logger } = {}) {
  const database: Database = connect(databaseUrl, {
    max: config.JOBLINE_DB_POOL_MAX,
    application: opts.application,
    acquireTimeoutMs: config.JOBLINE_DB_ACQUIRE_TIMEOUT_MS,
  });
  const { sql } = database;
  const logger = opts.logger ?? createLogger(config);
  const finishedWaits = createFinishedWaits(sql, { sweepMs: config.JOBLINE_WAIT_SWEEP_MS });
  const notifier = createNotifier(sql, {
    listenClient: () => listenClient(databaseUrl, opts.application),
    also: { channel: FINISHED_CHANNEL, onMessage: finishedWaits.onMessage },
  });
  const repos = {
    jobs: jobsRepository(sql),
    batches: batchesRepository(sql),
    apiKeys: apiKeysRepository(sql),
    tenants: tenantsRepository(sql),
    outbox: outboxRepository(sql),
    queues: queuesRepository(sql),
  };
  const capped = createCappedQueues(repos.queues, notifier);
  const metrics = createMetrics(sql, {
    tenantLabel: config.JOBLINE_METRICS_TENANT_LABEL,
    samplePeriodMs: config.JOBLINE_METRICS_SAMPLE_MS,
    renderCacheMs: config.JOBLINE_METRICS_CACHE_MS,
  });
  const auth = createAuthService({ apiKeys: repos.apiKeys, tenants: repos.tenants, cacheMs: config.JOBLINE_AUTH_CACHE_MS });
  const jobService = createJobService({ sql, jobs: repos.jobs, notifier, capped, finishedWaits, metrics, config });
  const batchService = createBatchService({ sql, batches: repos.batches, jobs: repos.jobs, notifier, capped, metrics });
  const services = {
    auth,
    jobs: jobService,
    batches: batchService,
    queues: createQueueService({ jobs: repos.jobs, queues: repos.queues, capped, notifier }),
    tenants: createTenantService({ tenants: repos.tenants }),
    maintenance: createMaintenanceService({ sql, jobs: repos.jobs, metrics, notifier, capped, finishedWaits }),
    retention: createRetentionService({ sql, outbox: repos.outbox, retentionDays: config.JOBLINE_RETENTION_DAYS }),
    schedules: createScheduleService({ sql, jobs: repos.jobs, notifier, graceMs: config.JOBLINE_SCHEDULE_GRACE_MS }),
    webhooks: createWebhookDelivery({ outbox: repos.outbox, tenants: repos.tenants, metrics, logger, config }),
    /** Jobs leased to a poll whose answer never reached its client, given back at once. */
    undelivered: { release: (rows: Parameters<typeof releaseUndelivered>[1]) => releaseUndelivered({ sql, metrics, notifier }, rows) },
  };

  return {
    config,
    databaseUrl,
    database,
    sql,
    logger,
    metrics,
    notifier,
    capped,
    finishedWaits,
    repos,
    services,
    async close() {
      notifier.wakeAll();
      finishedWaits.close();
      await database.close();
    },
  };
}

export type Container = ReturnType<typeof createContainer>;

/** What the background duties (src/worker) may use: services, never repositories or the pool. */
export type WorkerDeps = Pick<Container, "services" | "config" | "logger" | "metrics">;

/** What the HTTP layer (src/http) may use: the same. */
export type HttpDeps = WorkerDeps;
