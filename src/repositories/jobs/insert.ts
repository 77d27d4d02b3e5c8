import type { Queryable } from "../../db/client.js";
import { HELD_TAG, PREPARING_TAG } from "../../db/schema.js";
import { uuidv7 } from "../../domain/ids.js";
import { advanceClocks, allocateTags, fairKey, isHeld, virtualTime } from "./fairness.js";
import type { JobRow, NewJob } from "./rows.js";

const parentCount = (j: NewJob) => (j.dependsOn ? j.dependsOn.jobs.length + j.dependsOn.batches.length : 0);
/** A job with parents starts waiting (the transition table's resolve row moves it on). */
const waitingOf = (j: NewJob) => (parentCount(j) > 0 ? "waiting" : "queued");

/** The fairness tag CTE `g` of a single insert; a waiting job's is held, like a scheduled one's. */
function tagOf(j: NewJob, q: Queryable) {
  // A held job takes no tag from its group (and moves no clock): promoteDue tags it when due.
  return j.untilSealed
    ? q`g AS (SELECT ${PREPARING_TAG}::bigint AS last_tag)`
    : isHeld(j, Date.now()) || parentCount(j) > 0
    ? q`g AS (SELECT ${HELD_TAG}::bigint AS last_tag)`
    : q`g AS (
            INSERT INTO job_groups (queue, fair_key, last_tag)
            VALUES (${j.queue}, ${fairKey(j.tenant, j.groupKey)}, ${virtualTime(q, j.queue)})
            ON CONFLICT (queue, fair_key) DO UPDATE
              SET last_tag = GREATEST(job_groups.last_tag + 1, EXCLUDED.last_tag), updated_at = now()
            RETURNING queue, last_tag
          ),
          ${advanceClocks(q, q`SELECT queue, last_tag FROM g`)}`;
}

/** Inserts one job; with an idempotency key, or a schedule tick, that has its job already, inserts nothing and returns null. */
export async function insert(j: NewJob, q: Queryable): Promise<JobRow | null> {
  const rows = await q<JobRow[]>`
        WITH ${tagOf(j, q)}
        INSERT INTO jobs (id, tenant, queue, kind, payload, priority, group_key, fair_tag, run_at,
                          max_attempts, webhook_url, idempotency_key, request_hash, batch_id,
                          schedule_id, scheduled_for, timeout_seconds, expires_at, status, pending_dependencies, depends_on,
                          traceparent, tracestate, tags)
        SELECT ${j.id ?? uuidv7(Date.now())}::uuid, ${j.tenant}, ${j.queue}, ${j.kind}, ${JSON.stringify(j.payload)}::text::jsonb, ${j.priority},
               ${j.groupKey}, g.last_tag, coalesce(${j.runAt}::timestamptz, now()), ${j.maxAttempts},
               ${j.webhookUrl}, ${j.idempotencyKey}, ${j.requestHash}, ${j.batchId},
               ${j.schedule?.id ?? null}, ${j.schedule?.tick ?? null}, ${j.timeoutSeconds ?? null}::int, ${j.expiresAt ?? null}::timestamptz,
               ${waitingOf(j)}::job_status, ${parentCount(j)}::int, ${j.dependsOn ? JSON.stringify(j.dependsOn) : null}::text::jsonb,
               ${j.traceparent ?? null}::text, ${j.tracestate ?? null}::text, ${j.tags ?? []}::text[]
        FROM g
        ${
          j.schedule
            ? q`ON CONFLICT (schedule_id, scheduled_for) WHERE schedule_id IS NOT NULL DO NOTHING`
            : q`ON CONFLICT (tenant, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING`
        }
        RETURNING *`;
  return rows[0] ?? null;
}

/**
 * Inserts one job with a dedupe key, or returns the live job (queued or running) of its
 * tenant, queue and key: the partial unique index jobs_dedupe_uidx is the arbiter, so
 * concurrent submits make one job, and a match that finishes meanwhile no longer conflicts
 * (the insert goes ahead). `replace`: a match still queued takes this payload, priority and
 * runAt in the same statement (debounce). A conflict on the idempotency key raises 23505.
 */
export async function insertDeduped(j: NewJob & { dedupeKey: string }, replace: boolean, q: Queryable) {
  const swap = q`${replace}::boolean AND jobs.status = 'queued'`;
  const rows = await q<Array<JobRow & { inserted: boolean }>>`
        WITH ${tagOf(j, q)}
        INSERT INTO jobs (id, tenant, queue, kind, payload, priority, group_key, fair_tag, run_at,
                          max_attempts, webhook_url, idempotency_key, request_hash, batch_id, timeout_seconds, expires_at, dedupe_key,
                          traceparent, tracestate, tags)
        SELECT ${j.id ?? uuidv7(Date.now())}::uuid, ${j.tenant}, ${j.queue}, ${j.kind}, ${JSON.stringify(j.payload)}::text::jsonb, ${j.priority},
               ${j.groupKey}, g.last_tag, coalesce(${j.runAt}::timestamptz, now()), ${j.maxAttempts},
               ${j.webhookUrl}, ${j.idempotencyKey}, ${j.requestHash}, NULL, ${j.timeoutSeconds ?? null}::int,
               ${j.expiresAt ?? null}::timestamptz, ${j.dedupeKey}, ${j.traceparent ?? null}::text, ${j.tracestate ?? null}::text,
               ${j.tags ?? []}::text[]
        FROM g
        ON CONFLICT (tenant, queue, dedupe_key) WHERE status IN ('queued','running') AND dedupe_key IS NOT NULL
        DO UPDATE SET
          payload = CASE WHEN ${swap} THEN EXCLUDED.payload ELSE jobs.payload END,
          priority = CASE WHEN ${swap} THEN EXCLUDED.priority ELSE jobs.priority END,
          run_at = CASE WHEN ${swap} THEN EXCLUDED.run_at ELSE jobs.run_at END,
          updated_at = CASE WHEN ${swap} THEN now() ELSE jobs.updated_at END,
          version = jobs.version + CASE WHEN ${swap} THEN 1 ELSE 0 END
        RETURNING *, (xmax = 0) AS inserted`;
  const { inserted, ...row } = rows[0]!;
  return { row: row as JobRow, inserted };
}

/**
 * Multi-row insert for batches: tags for each (queue, group) are allocated
 * as one range, then every job goes in with a single INSERT … SELECT unnest.
 * Must run inside the caller's transaction.
 */
export async function insertMany(jobs: NewJob[], q: Queryable): Promise<JobRow[]> {
  if (jobs.length === 0) return [];
  const now = Date.now();
  const fixed = jobs.map((j) => (j.untilSealed ? PREPARING_TAG : isHeld(j, now) || parentCount(j) > 0 ? HELD_TAG : null));
  const allocated = await allocateTags(
    jobs.filter((_, i) => fixed[i] === null),
    q,
  );
  let k = 0;
  const tags = fixed.map((t) => t ?? allocated[k++]!);
  const col = <T>(f: (j: NewJob) => T) => jobs.map(f);
  return q<JobRow[]>`
        INSERT INTO jobs (id, tenant, queue, kind, payload, priority, group_key, fair_tag, run_at,
                          max_attempts, webhook_url, batch_id, timeout_seconds, expires_at, status, pending_dependencies, depends_on,
                          traceparent, tracestate, tags)
        SELECT t.id, t.tenant, t.queue, t.kind, t.payload, t.priority, t.group_key, t.fair_tag,
               coalesce(t.run_at, now()), t.max_attempts, t.webhook_url, t.batch_id, t.timeout_seconds, t.expires_at,
               t.status, t.pending, t.depends_on, t.traceparent, t.tracestate,
               -- Arrays of unequal length cannot be one text[][]: each job's tags travel as a jsonb array.
               ARRAY(SELECT jsonb_array_elements_text(t.tags))
        FROM unnest(
          ${col((j) => j.id ?? uuidv7(now))}::uuid[],
          ${col((j) => j.tenant)}::text[], ${col((j) => j.queue)}::text[], ${col((j) => j.kind)}::text[],
          ${col((j) => JSON.stringify(j.payload))}::text[]::jsonb[], ${col((j) => j.priority)}::int[],
          ${col((j) => j.groupKey)}::text[], ${tags}::bigint[], ${col((j) => j.runAt?.toISOString() ?? null)}::timestamptz[],
          ${col((j) => j.maxAttempts)}::int[], ${col((j) => j.webhookUrl)}::text[], ${col((j) => j.batchId)}::uuid[],
          ${col((j) => j.timeoutSeconds ?? null)}::int[], ${col((j) => j.expiresAt?.toISOString() ?? null)}::timestamptz[],
          ${col(waitingOf)}::job_status[], ${col(parentCount)}::int[],
          ${col((j) => (j.dependsOn ? JSON.stringify(j.dependsOn) : null))}::text[]::jsonb[],
          ${col((j) => j.traceparent ?? null)}::text[], ${col((j) => j.tracestate ?? null)}::text[],
          ${col((j) => JSON.stringify(j.tags ?? []))}::text[]::jsonb[]
        ) AS t(id, tenant, queue, kind, payload, priority, group_key, fair_tag, run_at, max_attempts, webhook_url, batch_id,
               timeout_seconds, expires_at, status, pending, depends_on, traceparent, tracestate, tags)
        RETURNING *`;
}
