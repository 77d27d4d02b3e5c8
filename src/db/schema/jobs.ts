import { sql } from "drizzle-orm";
import { bigint, boolean, check, index, integer, jsonb, pgEnum, pgTable, primaryKey, text, uniqueIndex, uuid } from "drizzle-orm/pg-core";
import { BATCH_STATUSES } from "../../domain/batches.js";
import { JOB_STATUSES } from "../../domain/jobs.js";
import { timeOrderedId, tz } from "./columns.js";

// The job lifecycle's tables: batches, jobs, their list and tag indexes, fairness groups, workflow edges.

/**
 * The fairness tag of a held job: one submitted with a runAt more than a few seconds
 * ahead. It takes no tag from its group and stays out of the claim index; when it is due,
 * the promotion (repositories/jobs/claim.ts promoteDue) gives it a tag as a submit at that moment
 * would. Without this, 100,000 jobs scheduled for tomorrow sat in the claim index ahead of
 * their group's later jobs and every claim walked past all of them (21 ms instead of 1.1).
 * 2^52: normal tags grow by one per job and never come near it.
 */
export const HELD_TAG = 2 ** 52;
/**
 * The fairness tag of a job of a batch still being built (created open, or added to it):
 * not claimable until the seal, so it stays out of the claim index, and out of the held
 * index too, so neither claims nor promotions walk past an open batch's jobs (an open batch
 * of 50,000 due jobs made a claim + complete of its queue take 21 ms instead of 3). The seal turns it
 * into HELD_TAG and the next promotion tags it.
 */
export const PREPARING_TAG = HELD_TAG + 2 ** 51;

export const jobStatus = pgEnum("job_status", JOB_STATUSES);
export const batchStatus = pgEnum("batch_status", BATCH_STATUSES);

export const batches = pgTable(
  "batches",
  {
    id: uuid("id").primaryKey().default(timeOrderedId),
    tenant: text("tenant").notNull(),
    status: batchStatus("status").notNull().default("preparing"),
    webhookUrl: text("webhook_url"),
    // Bumped by retry so each finalisation has its own outbox identity.
    generation: integer("generation").notNull().default(1),
    total: integer("total").notNull().default(0),
    // Jobs not yet terminal in this generation; the statement that takes it to 0 finalises.
    remaining: integer("remaining").notNull().default(0),
    succeededCount: integer("succeeded_count").notNull().default(0),
    failedCount: integer("failed_count").notNull().default(0),
    cancelledCount: integer("cancelled_count").notNull().default(0),
    cancelRequested: boolean("cancel_requested").notNull().default(false),
    createdAt: tz("created_at").notNull().defaultNow(),
    updatedAt: tz("updated_at").notNull().defaultNow(),
    sealedAt: tz("sealed_at"),
    // An open batch not sealed by then is cancelled by the reaper (seal_timeout).
    sealBy: tz("seal_by"),
    startedAt: tz("started_at"),
    finishedAt: tz("finished_at"),
    version: integer("version").notNull().default(1),
  },
  (t) => [
    check(
      "batches_finished_iff_terminal",
      sql`(${t.finishedAt} IS NOT NULL) = (${t.status} IN ('succeeded','failed','partially_succeeded','cancelled'))`,
    ),
    check("batches_remaining_nonneg", sql`${t.remaining} >= 0 AND ${t.remaining} <= ${t.total}`),
    index("batches_tenant_created_idx").on(t.tenant, t.createdAt),
    // Every claim skips jobs of batches still being prepared. Without this index that check
    // read the whole table, finished batches included: with 200,000 of them kept for the
    // retention period, a claim took 17 ms instead of 1.1 ms.
    index("batches_preparing_idx")
      .on(t.id)
      .where(sql`${t.status} = 'preparing'`),
    index("batches_seal_by_idx")
      .on(t.sealBy)
      .where(sql`${t.status} = 'preparing' AND ${t.sealBy} IS NOT NULL`),
  ],
);

// fillfactor 50 (drizzle/0008, which drizzle's table builder cannot express): a claim's or an
// acknowledgement's new row version stays on its page, so it is one lock record, not two.
export const jobs = pgTable(
  "jobs",
  {
    id: uuid("id").primaryKey().default(timeOrderedId),
    tenant: text("tenant").notNull(),
    queue: text("queue").notNull(),
    kind: text("kind").notNull(),
    payload: jsonb("payload").notNull(),
    priority: integer("priority").notNull().default(0),
    groupKey: text("group_key"),
    // Start-time fair queuing tag: claims order by (priority, fair_tag), see repositories/jobs/fairness.ts.
    fairTag: bigint("fair_tag", { mode: "number" }).notNull().default(0),
    runAt: tz("run_at").notNull().defaultNow(),
    status: jobStatus("status").notNull().default("queued"),
    attempts: integer("attempts").notNull().default(0),
    maxAttempts: integer("max_attempts").notNull().default(5),
    leaseToken: uuid("lease_token"),
    leaseExpiresAt: tz("lease_expires_at"),
    workerId: text("worker_id"),
    cancelRequested: boolean("cancel_requested").notNull().default(false),
    result: jsonb("result"),
    lastError: jsonb("last_error"),
    batchId: uuid("batch_id").references(() => batches.id, { onDelete: "cascade" }),
    generation: integer("generation").notNull().default(1),
    // Operator retries (POST /v1/jobs/{id}/retry); the job's events are keyed by generation + retries.
    retries: integer("retries").notNull().default(0),
    // The last 20 failed attempts, appended by the statement that records each failure.
    errors: jsonb("errors").notNull().default(sql`'[]'::jsonb`),
    idempotencyKey: text("idempotency_key"),
    requestHash: text("request_hash"),
    webhookUrl: text("webhook_url"),
    // Execution timeout per attempt; the claim sets deadline_at from it.
    timeoutSeconds: integer("timeout_seconds"),
    deadlineAt: tz("deadline_at"),
    // A queued job past this is never claimed; the reaper ends it cancelled (expired).
    expiresAt: tz("expires_at"),
    dedupeKey: text("dedupe_key"),
    createdAt: tz("created_at").notNull().defaultNow(),
    updatedAt: tz("updated_at").notNull().defaultNow(),
    startedAt: tz("started_at"),
    finishedAt: tz("finished_at"),
    version: integer("version").notNull().default(1),
    // The schedule and tick this job was made for (null for submitted jobs). No foreign key:
    // deleting a schedule leaves its jobs as they are.
    scheduleId: uuid("schedule_id"),
    scheduledFor: tz("scheduled_for"),
    // Workflows (docs/workflows.md): the parents named at submit, and how many have not finished.
    dependsOn: jsonb("depends_on"),
    pendingDependencies: integer("pending_dependencies").notNull().default(0),
    // Set (once) by the submit of its first dependent: the finalisation trigger runs only for these.
    hasDependents: boolean("has_dependents").notNull().default(false),
    // W3C trace context of the submit (src/tracing.ts), handed to workers and webhooks.
    traceparent: text("traceparent"),
    tracestate: text("tracestate"),
    // The latest progress the lease holder sent with a heartbeat: { percent?, message?, data?, at }.
    progress: jsonb("progress"),
    // Set at submit, never changed; job_tags (written once by trigger) is what a tag search reads.
    tags: text("tags").array().notNull().default(sql`'{}'::text[]`),
  },
  (t) => [
    check(
      "jobs_finished_iff_terminal",
      sql`(${t.finishedAt} IS NOT NULL) = (${t.status} IN ('succeeded','failed','cancelled'))`,
    ),
    check(
      "jobs_running_has_lease",
      sql`${t.status} <> 'running' OR (${t.leaseToken} IS NOT NULL AND ${t.leaseExpiresAt} IS NOT NULL)`,
    ),
    check("jobs_attempts_range", sql`${t.attempts} >= 0 AND ${t.maxAttempts} >= 1`),
    // The claim walks this partial index in order and stops after `max` rows. Held jobs
    // (scheduled well ahead, see HELD_TAG) are not in it, so no claim walks past them.
    index("jobs_claim_idx")
      .on(t.queue, t.priority.desc(), t.fairTag, t.id)
      .where(sql`${t.status} = 'queued' AND ${t.fairTag} < ${sql.raw(String(HELD_TAG))}`),
    // Held jobs by due time: what the promotion reads. Open-batch jobs are not in it.
    index("jobs_held_due_idx")
      .on(t.runAt)
      .where(
        sql`${t.status} = 'queued' AND ${t.fairTag} >= ${sql.raw(String(HELD_TAG))} AND ${t.fairTag} < ${sql.raw(String(PREPARING_TAG))}`,
      ),
    // What the promotion of releases before open-batch tags reads (without the upper bound
    // it could use no other index and would scan the table, every 250 ms, in every process
    // of the old release during a rolling upgrade). To be dropped by the next release.
    index("jobs_held_idx")
      .on(t.runAt)
      .where(sql`${t.status} = 'queued' AND ${t.fairTag} >= ${sql.raw(String(HELD_TAG))}`),
    // Jobs of open batches, by batch: what a seal releases.
    index("jobs_preparing_idx")
      .on(t.batchId)
      .where(sql`${t.status} = 'queued' AND ${t.fairTag} >= ${sql.raw(String(PREPARING_TAG))}`),
    // What the reaper's expiry reads.
    index("jobs_expires_idx")
      .on(t.expiresAt)
      .where(sql`${t.status} = 'queued' AND ${t.expiresAt} IS NOT NULL`),
    // One live job per dedupe key: the submit's ON CONFLICT arbiter, so concurrent submits make one.
    uniqueIndex("jobs_dedupe_uidx")
      .on(t.tenant, t.queue, t.dedupeKey)
      .where(sql`${t.status} IN ('queued','running') AND ${t.dedupeKey} IS NOT NULL`),
    uniqueIndex("jobs_idempotency_uidx")
      .on(t.tenant, t.idempotencyKey)
      .where(sql`${t.idempotencyKey} IS NOT NULL`),
    index("jobs_batch_idx")
      .on(t.batchId, t.status)
      .where(sql`${t.batchId} IS NOT NULL`),
    // One job per tick: a second scheduler's insert for the same tick is a no-op.
    uniqueIndex("jobs_schedule_tick_uidx")
      .on(t.scheduleId, t.scheduledFor)
      .where(sql`${t.scheduleId} IS NOT NULL`),
    index("jobs_finished_idx")
      .on(t.finishedAt)
      .where(sql`${t.finishedAt} IS NOT NULL`),
    // Jobs holding a queue-control slot: running, or requeued after an attempt (a retry keeps
    // its key's turn). The gate counts these by (queue, tenant, key); the reaper reads it whole,
    // testing lease_expires_at in the index (one index for both: a claim writes one entry, not two).
    // Only statements that say "attempts > 0" may use it (the gate, the reaper): a running job
    // has attempts > 0 anyway, but a complete that looks rows up by id must not walk it.
    index("jobs_slot_idx")
      .on(t.queue, t.tenant, t.groupKey, t.leaseExpiresAt)
      .where(sql`${t.attempts} > 0 AND (${t.status} = 'running' OR ${t.status} = 'queued')`),
    // A serial key's waiting first attempts in claim order: claim-by-id asks whether its job is
    // among its key's first, by equality on the key (a scan of the claim index would read the queue).
    index("jobs_key_turn_idx")
      .on(t.queue, t.tenant, t.groupKey, t.priority.desc(), t.fairTag, t.id)
      .where(sql`${t.status} = 'queued' AND ${t.fairTag} < ${sql.raw(String(HELD_TAG))} AND ${t.attempts} = 0 AND ${t.groupKey} IS NOT NULL`),
  ],
);

/**
 * The order of each tenant's jobs, for listing. A row here is written once, when its job
 * is inserted (trigger jobs_listed, drizzle/0002), and removed with it. On jobs itself this
 * index took a new entry at every state change (an update that changes status is never HOT,
 * so every index of jobs gets one), which cost the claim + complete path about 12 %.
 */
export const jobList = pgTable(
  "job_list",
  {
    tenant: text("tenant").notNull(),
    createdAt: tz("created_at").notNull(),
    id: uuid("id").notNull(),
  },
  (t) => [uniqueIndex("job_list_uidx").on(t.tenant, t.createdAt.desc(), t.id.desc())],
);

/**
 * One row per (job, tag), written once when the job is inserted (the jobs_listed trigger,
 * drizzle/0014) and removed with it: GET /v1/jobs?tag= walks this index newest first and
 * finds each job by primary key, so a page costs the same at 1M jobs as at 1,000.
 */
export const jobTags = pgTable(
  "job_tags",
  {
    tenant: text("tenant").notNull(),
    tag: text("tag").notNull(),
    createdAt: tz("created_at").notNull(),
    id: uuid("id").notNull(),
  },
  (t) => [uniqueIndex("job_tags_uidx").on(t.tenant, t.tag, t.createdAt.desc(), t.id.desc())],
);

export const jobGroups = pgTable(
  "job_groups",
  {
    queue: text("queue").notNull(),
    fairKey: text("fair_key").notNull(),
    lastTag: bigint("last_tag", { mode: "number" }).notNull().default(0),
    updatedAt: tz("updated_at").notNull().defaultNow(),
  },
  (t) => [
    uniqueIndex("job_groups_pk").on(t.queue, t.fairKey),
    // A tag at or above HELD_TAG would make every later job of the group look held, and
    // its promotion would hand out held tags again: such jobs would never be claimable.
    // Nothing in this release computes one; the check stops a writer that could (a replica
    // of a release from before held jobs, whose virtual time may read a held job's tag).
    check("job_groups_tag_below_held", sql`${t.lastTag} < ${sql.raw(String(HELD_TAG))}`),
  ],
);

/**
 * One edge per (parent, child) of a workflow: the parent a job or a batch. `resolved` is set
 * once, by the statement that resolves the edge, so a child's pending count moves once per
 * parent. No foreign key on the parent (a job or a batch); the child's deletion removes it.
 */
export const jobDependencies = pgTable(
  "job_dependencies",
  {
    parentId: uuid("parent_id").notNull(),
    parentIsBatch: boolean("parent_is_batch").notNull(),
    childId: uuid("child_id")
      .notNull()
      .references(() => jobs.id, { onDelete: "cascade" }),
    resolved: boolean("resolved").notNull().default(false),
  },
  (t) => [primaryKey({ columns: [t.parentId, t.childId] }), index("job_dependencies_child_idx").on(t.childId)],
);

/**
 * Parents finished inside a dependency resolution (a cancelled dependent that has dependents
 * of its own, a batch finalised by it): their dependents are resolved by the next step of the
 * cascade (src/worker/cascade.ts), not recursively inside the first statement.
 */
export const dependencyCascade = pgTable("dependency_cascade", {
  parentId: uuid("parent_id").primaryKey(),
  parentIsBatch: boolean("parent_is_batch").notNull(),
  createdAt: tz("created_at").notNull().defaultNow(),
});
