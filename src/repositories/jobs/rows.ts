import type { JobStatus } from "../../domain/jobs.js";

/** A row of `jobs` as postgres.js hands it back (columns camel-cased by the driver's transform). */
export interface JobRow {
  id: string;
  tenant: string;
  queue: string;
  kind: string;
  payload: unknown;
  priority: number;
  groupKey: string | null;
  fairTag: string;
  runAt: Date;
  status: JobStatus;
  attempts: number;
  maxAttempts: number;
  leaseToken: string | null;
  leaseExpiresAt: Date | null;
  workerId: string | null;
  cancelRequested: boolean;
  result: unknown;
  lastError: unknown;
  batchId: string | null;
  generation: number;
  retries: number;
  errors: JobErrorEntry[];
  idempotencyKey: string | null;
  requestHash: string | null;
  webhookUrl: string | null;
  timeoutSeconds: number | null;
  deadlineAt: Date | null;
  expiresAt: Date | null;
  dedupeKey: string | null;
  createdAt: Date;
  updatedAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  version: number;
  scheduleId: string | null;
  scheduledFor: Date | null;
  dependsOn: { jobs?: string[]; batches?: string[] } | null;
  pendingDependencies: number;
  /** Set by the submit of its first dependent; the finalisation trigger fires only for these. */
  hasDependents: boolean;
  /** W3C trace context of the submit (null: none). */
  traceparent: string | null;
  tracestate: string | null;
  progress: JobProgress | null;
  tags: string[];
}

/** What the lease holder last reported with a heartbeat; `at` is the database's time of it. */
export interface JobProgress {
  percent?: number;
  message?: string;
  data?: unknown;
  at: string;
}

/** One failed attempt in a job's error history. */
export interface JobErrorEntry {
  attempt: number;
  at: string;
  code: string | null;
  message: string;
}

/** A finalised job, lean: what an acknowledgement that asked for lean rows gets back (and the metrics need). */
export type LeanJobRow = Pick<JobRow, "id" | "leaseToken" | "status" | "tenant" | "queue" | "kind" | "startedAt" | "finishedAt" | "updatedAt" | "traceparent" | "tracestate">;

export interface NewJob {
  /** Chosen by the caller when it must tell rows of one multi-row insert apart; else made here (uuidv7). */
  id?: string;
  tenant: string;
  queue: string;
  kind: string;
  payload: unknown;
  priority: number;
  groupKey: string | null;
  runAt: Date | null;
  maxAttempts: number;
  webhookUrl: string | null;
  idempotencyKey: string | null;
  requestHash: string | null;
  batchId: string | null;
  timeoutSeconds?: number | null;
  expiresAt?: Date | null;
  tags?: string[];
  /** A job of an open batch: not claimable, so no tag, until the batch is sealed. */
  untilSealed?: boolean;
  /** dependsOn: inserted `waiting` (held tag: released jobs are tagged by the promotion), counting every parent. */
  dependsOn?: { jobs: string[]; batches: string[] } | null;
  /** A schedule's job: the insert is a no-op when this tick has its job already. */
  schedule?: { id: string; tick: Date };
  traceparent?: string | null;
  tracestate?: string | null;
}

/**
 * What a claim returns: every column (`full`, the default), or `worker`: what a worker reads
 * to run a job and report on it plus what the claim's own bookkeeping reads (metrics, traces,
 * the batch start, the claim order). Fewer columns are less for PostgreSQL to send and for the
 * driver to parse (docs/performance-notes.md, "Worker rows").
 */
export type ClaimFields = "full" | "worker";
export const WORKER_ROW_KEYS = [
  "id",
  "tenant",
  "queue",
  "kind",
  "payload",
  "priority",
  "fairTag",
  "status",
  "attempts",
  "maxAttempts",
  "leaseToken",
  "leaseExpiresAt",
  "workerId",
  "deadlineAt",
  "createdAt",
  "runAt",
  "startedAt",
  "batchId",
  "traceparent",
  "tracestate",
  "progress",
] as const satisfies ReadonlyArray<keyof JobRow>;
/** A claimed row with at least the worker columns; a `full` claim's rows are JobRows. */
export type WorkerRow = Pick<JobRow, (typeof WORKER_ROW_KEYS)[number]>;
export type ClaimedRow<F extends ClaimFields | undefined> = F extends "worker" ? WorkerRow : JobRow;

/** A row a `full` claim returned; a worker row here is a caller's bug, not a state. */
export function fullRow(r: WorkerRow): JobRow {
  if (!("updatedAt" in r)) throw new Error(`job ${r.id}: a worker row where the full row was needed`);
  return r as JobRow;
}

export interface ClaimFilter {
  queues: string[];
  /** The columns the claim returns (default full). */
  fields?: ClaimFields | undefined;
  kinds?: string[] | undefined;
  /** null: a platform worker (tenant `*`) that may claim any tenant's jobs. */
  tenant: string | null;
  workerId: string;
  leaseSeconds: number;
  max: number;
}

/** A claim's filter without its taker: what several coalesced polls share. */
export type SharedClaimFilter = Omit<ClaimFilter, "workerId" | "max">;
export interface Taker {
  workerId: string;
  max: number;
}

/** One acknowledgement item: the job, the lease that must still hold it, its result. */
export interface CompleteItem {
  id: string;
  leaseToken: string;
  result: unknown;
}

/** Taker i gets the next max_i rows in claim order. rn stays on the rows: copying every row without it cost more than the claim's parsing. */
export function byTaker<R extends { rn: number }>(rows: R[], takers: Array<{ max: number }>): R[][] {
  const sorted = [...rows].sort((a, b) => a.rn - b.rn);
  const out: R[][] = [];
  let k = 0;
  for (const t of takers) {
    out.push(sorted.slice(k, k + t.max));
    k += t.max;
  }
  return out;
}
