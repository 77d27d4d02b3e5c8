import type { JobRow } from "../repositories/jobs.js";

const iso = (d: Date | string | null | undefined) =>
  d === null || d === undefined ? null : d instanceof Date ? d.toISOString() : new Date(d).toISOString();

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
    batchId: r.batchId,
    idempotencyKey: r.idempotencyKey,
    webhookUrl: r.webhookUrl,
    createdAt: iso(r.createdAt)!,
    updatedAt: iso(r.updatedAt)!,
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    version: r.version,
  };
}

export type JobDto = ReturnType<typeof jobDto>;

export function claimedJobDto(r: JobRow) {
  return { ...jobDto(r), leaseToken: r.leaseToken! };
}

/** Rows snapshotted by to_jsonb() in SQL keep snake_case keys. */
export function camelize<T>(snake: Record<string, unknown>): T {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(snake)) out[k.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase())] = v;
  return out as T;
}
