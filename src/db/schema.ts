import { sql } from "drizzle-orm";
import { boolean, check, index, integer, jsonb, pgEnum, pgTable, primaryKey, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { CATCH_UP, OVERLAP } from "../domain/schedules.js";
import { timeOrderedId, tz } from "./schema/columns.js";

// The schema drizzle-kit reads (drizzle.config.ts): the job lifecycle's tables are in
// schema/jobs.ts, re-exported here; queue settings, keys, tenants, outbox and schedules below.
export * from "./schema/jobs.js";

export const scheduleOverlap = pgEnum("schedule_overlap", OVERLAP);
export const scheduleCatchUp = pgEnum("schedule_catch_up", CATCH_UP);
export const outboxStatus = pgEnum("outbox_status", ["pending", "delivered", "dead"]);

/**
 * Queue controls per (tenant, queue); no row = no limit. The row is also the gate: every claim
 * of a capped queue locks it (jobline_gate, drizzle/0009) before counting, so claims of one
 * (tenant, queue) decide one after another. rate_at/rate_n: the rate window's start log.
 */
export const queueSettings = pgTable(
  "queue_settings",
  {
    queue: text("queue").notNull(),
    tenant: text("tenant").notNull(),
    paused: boolean("paused").notNull().default(false),
    concurrency: integer("concurrency"),
    groupConcurrency: integer("group_concurrency"),
    rateLimit: integer("rate_limit"),
    ratePeriodSeconds: integer("rate_period_seconds"),
    defaultTimeoutSeconds: integer("default_timeout_seconds"),
    rateAt: tz("rate_at").array().notNull().default(sql`'{}'`),
    rateN: integer("rate_n").array().notNull().default(sql`'{}'`),
    createdAt: tz("created_at").notNull().defaultNow(),
    updatedAt: tz("updated_at").notNull().defaultNow(),
    version: integer("version").notNull().default(1),
  },
  (t) => [
    primaryKey({ columns: [t.queue, t.tenant] }),
    check("queue_settings_limits", sql`${t.concurrency} >= 1 AND ${t.groupConcurrency} >= 1 AND ${t.rateLimit} >= 1 AND ${t.ratePeriodSeconds} >= 1`),
    check("queue_settings_timeout", sql`${t.defaultTimeoutSeconds} BETWEEN 1 AND 86400`),
    check("queue_settings_rate_pair", sql`(${t.rateLimit} IS NULL) = (${t.ratePeriodSeconds} IS NULL)`),
  ],
);

export const apiKeys = pgTable(
  "api_keys",
  {
    id: uuid("id").primaryKey().defaultRandom(),
    tenant: text("tenant").notNull(),
    roles: text("roles").array().notNull(),
    name: text("name"),
    keyHash: text("key_hash").notNull(),
    prefix: text("prefix").notNull(),
    createdAt: tz("created_at").notNull().defaultNow(),
  },
  (t) => [uniqueIndex("api_keys_hash_uidx").on(t.keyHash)],
);

export const tenants = pgTable("tenants", {
  tenant: text("tenant").primaryKey(),
  webhookSecret: text("webhook_secret").notNull(),
  createdAt: tz("created_at").notNull().defaultNow(),
  rotatedAt: tz("rotated_at"),
});

export const webhookOutbox = pgTable(
  "webhook_outbox",
  {
    id: uuid("id").primaryKey().default(timeOrderedId),
    tenant: text("tenant").notNull(),
    subjectId: uuid("subject_id").notNull(),
    eventType: text("event_type").notNull(),
    generation: integer("generation").notNull(),
    url: text("url").notNull(),
    // Snapshot of the row the finalising statement RETURNED.
    data: jsonb("data").notNull(),
    status: outboxStatus("status").notNull().default("pending"),
    attempts: integer("attempts").notNull().default(0),
    nextAttemptAt: tz("next_attempt_at").notNull().defaultNow(),
    leaseToken: uuid("lease_token"),
    leaseExpiresAt: tz("lease_expires_at"),
    lastError: text("last_error"),
    createdAt: tz("created_at").notNull().defaultNow(),
    deliveredAt: tz("delivered_at"),
  },
  (t) => [
    uniqueIndex("webhook_outbox_finalisation_uidx").on(t.subjectId, t.eventType, t.generation),
    index("webhook_outbox_due_idx")
      .on(t.nextAttemptAt)
      .where(sql`${t.status} = 'pending'`),
    index("webhook_outbox_done_idx")
      .on(t.createdAt)
      .where(sql`${t.status} <> 'pending'`),
  ],
);

export const schedules = pgTable(
  "schedules",
  {
    id: uuid("id").primaryKey().default(timeOrderedId),
    tenant: text("tenant").notNull(),
    name: text("name").notNull(),
    cron: text("cron").notNull(),
    timezone: text("timezone").notNull().default("UTC"),
    // The job template: POST /v1/jobs's fields without runAt.
    job: jsonb("job").notNull(),
    overlap: scheduleOverlap("overlap").notNull().default("allow"),
    catchUp: scheduleCatchUp("catch_up").notNull().default("latest"),
    paused: boolean("paused").notNull().default(false),
    // The next tick to run; null while paused (resuming starts from the next tick after it)
    // or when the cron has no future tick. The scheduler advances it with a guard on its value.
    nextRunAt: tz("next_run_at"),
    lastRunAt: tz("last_run_at"),
    lastJobId: uuid("last_job_id"),
    createdAt: tz("created_at").notNull().defaultNow(),
    updatedAt: tz("updated_at").notNull().defaultNow(),
    version: integer("version").notNull().default(1),
  },
  (t) => [
    uniqueIndex("schedules_tenant_name_uidx").on(t.tenant, t.name),
    index("schedules_tenant_created_idx").on(t.tenant, t.createdAt, t.id),
    // What the scheduler reads every pass.
    index("schedules_due_idx")
      .on(t.nextRunAt)
      .where(sql`${t.nextRunAt} IS NOT NULL`),
  ],
);
