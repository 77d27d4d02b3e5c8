import { rememberLast } from "../domain/memo.js";
import type { BatchCounts, BatchRow } from "../repositories/batches.js";
import type { JobRow } from "../repositories/jobs.js";
import { fullRow, type WorkerRow } from "../repositories/jobs/rows.js";

/**
 * Date → ISO text, remembering the last few: the rows of one claim share most timestamps,
 * and toISOString is the costliest step of building a job's representation.
 */
const isoOf = rememberLast(4, (ms: number) => new Date(ms).toISOString());
const iso = (d: Date | string | null | undefined) =>
  d === null || d === undefined ? null : isoOf(d instanceof Date ? d.getTime() : new Date(d).getTime());

/** The public job representation: what HTTP returns and what webhooks carry. */
export function jobDto(r: JobRow) {
  return {
    id: r.id,
    tenant: r.tenant,
    queue: r.queue,
    kind: r.kind,
    payload: r.payload,
    priority: r.priority,
    groupKey: r.groupKey,
    runAt: iso(r.runAt)!,
    status: r.status,
    attempts: r.attempts,
    maxAttempts: r.maxAttempts,
    leaseExpiresAt: iso(r.leaseExpiresAt),
    workerId: r.workerId,
    cancelRequested: r.cancelRequested,
    result: r.result ?? null,
    lastError: (r.lastError ?? null) as { message: string; code?: string } | null,
    // A webhook snapshot taken before the column existed has none.
    errors: r.errors ?? [],
    batchId: r.batchId,
    idempotencyKey: r.idempotencyKey,
    webhookUrl: r.webhookUrl,
    timeoutSeconds: r.timeoutSeconds,
    deadlineAt: iso(r.deadlineAt),
    expiresAt: iso(r.expiresAt),
    dedupeKey: r.dedupeKey,
    createdAt: iso(r.createdAt)!,
    updatedAt: iso(r.updatedAt)!,
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    version: r.version,
    scheduleId: r.scheduleId ?? null,
    scheduledFor: iso(r.scheduledFor),
    // Workflows: the parents named at submit (null without), and how many have not finished.
    dependsOn: r.dependsOn ? { jobs: r.dependsOn.jobs ?? [], batches: r.dependsOn.batches ?? [] } : null,
    pendingDependencies: r.pendingDependencies ?? 0,
    // A webhook snapshot taken before the columns existed has neither.
    traceparent: r.traceparent ?? null,
    tracestate: r.tracestate ?? null,
    // Webhook snapshots taken before these columns existed have neither.
    tags: r.tags ?? [],
    progress: r.progress ?? null,
  };
}

export type JobDto = ReturnType<typeof jobDto>;

export function claimedJobDto(r: JobRow) {
  return { ...jobDto(r), leaseToken: r.leaseToken! };
}

/** A claimed row of a `full` claim (checked: the columns depend on the claim's fields). */
export const fullClaimedJobDto = (r: WorkerRow) => claimedJobDto(fullRow(r));

/** process-next's `fields: "worker"`: what a worker reads to run a job and report on it (docs/workers.md). */
export const WORKER_FIELDS = [
  "id",
  "queue",
  "kind",
  "payload",
  "attempts",
  "maxAttempts",
  "leaseToken",
  "leaseExpiresAt",
  "deadlineAt",
  "traceparent",
  "tracestate",
  "progress",
] as const;
export type WorkerField = (typeof WORKER_FIELDS)[number];

export type WorkerJobDto = Pick<ReturnType<typeof claimedJobDto>, WorkerField>;

export function workerJobDto(r: WorkerRow): WorkerJobDto {
  return {
    id: r.id,
    queue: r.queue,
    kind: r.kind,
    payload: r.payload,
    attempts: r.attempts,
    maxAttempts: r.maxAttempts,
    leaseToken: r.leaseToken!,
    leaseExpiresAt: iso(r.leaseExpiresAt),
    deadlineAt: iso(r.deadlineAt),
    traceparent: r.traceparent ?? null,
    tracestate: r.tracestate ?? null,
    progress: r.progress ?? null,
  };
}

/** Rows snapshotted by to_jsonb() in SQL keep snake_case keys. */
export function camelize<T>(snake: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(snake)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  return out as T;
}

/**
 * The public batch representation: what HTTP returns and what the
 * batch.completed webhook carries. Without live `counts` (a webhook snapshot)
 * the batch's own counters stand in; they are exact once it is terminal, and
 * before that its unfinished jobs (waiting ones too) are reported as queued.
 */
export function batchDto(r: BatchRow, counts?: BatchCounts) {
  return {
    id: r.id,
    tenant: r.tenant,
    status: r.status,
    total: r.total,
    counts: counts ?? {
      queued: r.remaining,
      running: 0,
      succeeded: r.succeededCount,
      failed: r.failedCount,
      cancelled: r.cancelledCount,
      waiting: 0,
    },
    webhookUrl: r.webhookUrl,
    generation: r.generation,
    cancelRequested: r.cancelRequested,
    createdAt: iso(r.createdAt)!,
    updatedAt: iso(r.updatedAt)!,
    sealedAt: iso(r.sealedAt),
    sealBy: iso(r.sealBy),
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    version: r.version,
  };
}

export type BatchDto = ReturnType<typeof batchDto>;
