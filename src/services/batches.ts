import type { Sql } from "../db/client.js";
import type postgres from "postgres";
import { type BatchStatus, isBatchTerminal } from "../domain/batches.js";
import { err, ok } from "../domain/outcomes.js";
import type { BatchCounts, BatchCursor, BatchesRepository, BatchRow } from "../repositories/batches.js";
import { zeroCounts } from "../repositories/batches.js";
import type { JobsRepository } from "../repositories/jobs.js";
import type { Metrics } from "../metrics.js";
import { MAX_PAYLOAD_BYTES, payloadBytes, type SubmitInput, type TenantScope, toNewJob } from "./jobs.js";
import type { Notifier } from "./notifier.js";
import type { CappedQueues } from "./queues/capped.js";
import { inTx } from "../db/tx.js";
import { uuidv7 } from "../domain/ids.js";
import { linkChildren, lockAndCheck, parentsOf } from "./jobs/workflows.js";

/** An open batch not sealed within this is cancelled by the reaper (DESIGN.md: default 86400). */
export const DEFAULT_SEAL_WITHIN_SECONDS = 86_400;
/** How long a batch cancel waits for one job's row lock before starting over. */
const JOB_LOCK_WAIT_MS = 250;

/** Jobs per create or add request; one multi-row INSERT carries them all. */
export const MAX_BATCH_JOBS = 10_000;

export interface BatchView {
  batch: BatchRow;
  counts: BatchCounts;
}

type Tx = postgres.TransactionSql;

function checkJobs(jobs: SubmitInput[]) {
  if (jobs.length > MAX_BATCH_JOBS) return err("payload_too_large", `at most ${MAX_BATCH_JOBS} jobs per request`);
  const i = jobs.findIndex((j) => payloadBytes(j.payload) > MAX_PAYLOAD_BYTES);
  if (i >= 0) return err("payload_too_large", `jobs[${i}].payload exceeds 256 KiB`);
  return null;
}

interface BatchCtx {
  sql: Sql;
  batches: BatchesRepository;
  jobs: JobsRepository;
  notifier: Notifier;
  capped: Pick<CappedQueues, "freed">;
  metrics: Metrics;
}

function wake(c: BatchCtx, queues: Iterable<string>) {
  for (const q of queues) c.notifier.notify(q);
}

/** preparing → pending, and at once → terminal when no job is left to run (empty, or all cancelled while open). */
async function sealIn(c: BatchCtx, tx: Tx, id: string, scope: TenantScope): Promise<BatchRow | null> {
  const sealed = await c.batches.sealIfPreparing(id, scope, tx);
  if (!sealed) return null;
  if (sealed.remaining > 0) return sealed;
  return (await c.batches.finaliseIfDone(id, tx)) ?? sealed;
}

export async function create(
  c: BatchCtx,
  tenant: string,
  input: { jobs: SubmitInput[]; seal: boolean; webhookUrl?: string | undefined; sealWithinSeconds?: number | undefined },
) {
  const invalid = checkJobs(input.jobs);
  if (invalid) return invalid;
  const parents = input.jobs.map((j) => parentsOf(j.dependsOn));
  const out = await inTx(c.sql, async (tx) => {
    // Parents first, before anything is written (workflows.ts: lockAndCheck).
    const checked = await lockAndCheck(tenant, parents.filter((p) => p !== null), tx);
    if (!checked.locked) return { kind: "refused" as const, error: checked.error! };
    const sealWithinSeconds = input.seal ? null : (input.sealWithinSeconds ?? DEFAULT_SEAL_WITHIN_SECONDS);
    const b = await c.batches.create({ tenant, webhookUrl: input.webhookUrl ?? null, jobs: input.jobs.length, sealWithinSeconds }, tx);
    // Sealed in this same transaction: tagged now. Open: tagged when sealed.
    const news = input.jobs.map((j, i) =>
      toNewJob(tenant, j, { id: uuidv7(Date.now()), batchId: b.id, untilSealed: !input.seal, dependsOn: parents[i] ?? null }),
    );
    await c.jobs.insertMany(news, tx);
    const children = news.flatMap((j, i) => (parents[i] ? [{ id: j.id!, parents: parents[i]! }] : []));
    if (children.length > 0) await linkChildren(children, checked.locked, tx);
    const batch = input.seal ? ((await sealIn(c, tx, b.id, tenant)) ?? b) : b;
    // Without parents every job was just inserted queued; nothing could claim one before the commit.
    const counts = children.length > 0 ? await c.batches.counts(b.id, tx) : { ...zeroCounts(), queued: input.jobs.length };
    return { kind: "made" as const, view: { batch, counts } };
  });
  if (out.kind === "refused") return out.error;
  if (out.view.batch.status === "pending") wake(c, new Set(input.jobs.map((j) => j.queue)));
  return ok<BatchView>(out.view);
}

export async function addJobs(c: BatchCtx, id: string, scope: TenantScope, input: SubmitInput[]) {
  const invalid = checkJobs(input);
  if (invalid) return invalid;
  const parents = input.map((j) => parentsOf(j.dependsOn));
  const added = await inTx(c.sql, async (tx) => {
    // The batch's row lock comes after the parents' (jobs, then batches, as every writer locks).
    const tenant = parents.some((p) => p !== null) ? (await c.batches.findById(id, scope, tx))?.tenant : undefined;
    const checked = tenant ? await lockAndCheck(tenant, parents.filter((p) => p !== null), tx) : null;
    if (checked && !checked.locked) return { kind: "refused" as const, error: checked.error! };
    const b = await c.batches.reserveIfPreparing(id, scope, input.length, tx);
    if (!b) return null;
    const news = input.map((j, i) =>
      toNewJob(b.tenant, j, { id: uuidv7(Date.now()), batchId: b.id, untilSealed: true, dependsOn: parents[i] ?? null }),
    );
    await c.jobs.insertMany(news, tx);
    const children = news.flatMap((j, i) => (parents[i] ? [{ id: j.id!, parents: parents[i]! }] : []));
    if (children.length > 0 && checked?.locked) await linkChildren(children, checked.locked, tx);
    return { kind: "made" as const, added: input.length };
  });
  if (added?.kind === "refused") return added.error;
  if (added) return ok({ added: added.added });
  const cur = await c.batches.findById(id, scope);
  if (!cur) return err("not_found");
  return err("batch_sealed", `batch is ${cur.status}; jobs can only be added while it is preparing`);
}

const isCancelled = (b: BatchRow) => b.status === "cancelled" || b.cancelRequested;

export async function seal(c: BatchCtx, id: string, scope: TenantScope) {
  const out = await inTx(c.sql, async (tx) => {
    const batch = await sealIn(c, tx, id, scope);
    if (!batch) return null;
    // Created open, so its jobs carry the open-batch tag until now (a batch created
    // sealed was tagged at insert).
    await c.jobs.releaseQueuedOfSealed(id, tx);
    const queues = batch.status === "pending" ? await c.batches.queuedQueues(id, tx) : [];
    return { view: { batch, counts: await c.batches.counts(id, tx) }, queues };
  });
  if (out) {
    wake(c, out.queues);
    return ok<BatchView>(out.view);
  }
  const cur = await c.batches.findCounted(id, scope);
  if (!cur) return err("not_found");
  if (isCancelled(cur)) return err("batch_cancelled", `batch is ${cur.cancelRequested ? "being cancelled" : "cancelled"}`);
  // Already sealed: sealing is idempotent.
  const { counts, ...batch } = cur;
  return ok<BatchView>({ batch, counts }, true);
}

export async function get(c: BatchCtx, id: string, scope: TenantScope) {
  const cur = await c.batches.findCounted(id, scope);
  if (!cur) return err("not_found");
  const { counts, ...batch } = cur;
  return ok<BatchView>({ batch, counts });
}

export async function list(c: BatchCtx, f: { tenant: TenantScope; status?: BatchStatus | undefined; limit: number; after?: BatchCursor | undefined }) {
  return c.batches.list(f);
}

/**
 * Open batch: sealed and marked in one UPDATE (which waits for in-flight
 * adds and shuts out later ones), then its queued jobs are cancelled.
 * Sealed batch: every unfinished job is locked first, so none can move
 * between queued and running while the batch is marked, its queued jobs
 * cancelled and its running ones asked to stop; a running job that then
 * fails or loses its lease ends cancelled instead of queued, so no job of
 * the batch is claimable after the commit.
 */
export async function cancel(c: BatchCtx, id: string, scope: TenantScope) {
  for (let pass = 0; pass < 5; pass++) {
    const cur = await c.batches.findById(id, scope);
    if (!cur) return err("not_found");
    if (isBatchTerminal(cur.status)) return err("batch_not_cancellable", `batch is ${cur.status}`);
    const out = await inTx(c.sql, async (tx) => {
      let marked: BatchRow | null;
      let cancelled: { n: number; queues: string[] };
      if (cur.status === "preparing") {
        marked = await c.batches.cancelIfPreparing(id, scope, tx);
        if (!marked) return null;
        cancelled = await c.jobs.cancelQueuedOfBatch(id, { skipLocked: true }, tx);
      } else {
        await c.jobs.lockUnfinishedOfBatch(id, JOB_LOCK_WAIT_MS, tx);
        // Guarded by the generation read above: a batch that finished and was retried meanwhile has other jobs.
        marked = await c.batches.requestCancelIfUnfinished(id, cur.generation, tx);
        if (!marked) return null;
        cancelled = await c.jobs.cancelQueuedOfBatch(id, { skipLocked: false }, tx);
        await c.jobs.requestCancelRunningOfBatch(id, tx);
      }
      await c.batches.finaliseIfDone(id, tx);
      // Locked by this transaction since the mark: the row as it will commit.
      const batch = (await c.batches.findById(id, null, tx))!;
      return { cancelled, view: { batch, counts: await c.batches.counts(id, tx) } };
    });
    if (out) {
      if (out.cancelled.n > 0) c.metrics.transitions.inc({ from: "queued", to: "cancelled" }, out.cancelled.n);
      // A cancelled retry held its key's turn until now, as single cancel says (jobs.ts).
      c.capped.freed(out.cancelled.queues);
      return ok<BatchView>(out.view);
    }
    // Sealed, finished or retried between the read and the write: decide again from the new state.
  }
  return err("batch_not_cancellable", "batch kept changing state; retry");
}

export async function retry(c: BatchCtx, id: string, scope: TenantScope) {
  const out = await inTx(c.sql, async (tx) => {
    const r = await c.batches.retryIfFinished(id, scope, tx);
    if (!r) return null;
    const batch = r.batch.remaining > 0 ? r.batch : ((await c.batches.finaliseIfDone(id, tx)) ?? r.batch);
    return { ...r, view: { batch, counts: await c.batches.counts(id, tx) } };
  });
  if (out) {
    if (out.requeued.failed > 0) c.metrics.transitions.inc({ from: "failed", to: "queued" }, out.requeued.failed);
    if (out.requeued.cancelled > 0) c.metrics.transitions.inc({ from: "cancelled", to: "queued" }, out.requeued.cancelled);
    wake(c, out.queues);
    return ok<BatchView>(out.view);
  }
  const cur = await c.batches.findById(id, scope);
  if (!cur) return err("not_found");
  return err("batch_not_retryable", `batch is ${cur.status}; only a failed, partially_succeeded or cancelled batch can be retried`);
}

/**
 * The reaper's part: open batches not sealed within their sealWithinSeconds are cancelled
 * with their queued jobs (code seal_timeout), one batch per transaction, as a cancel would.
 */
export async function cancelUnsealed(c: BatchCtx, limit = 100): Promise<number> {
  let n = 0;
  for (; n < limit; n++) {
    const done = await inTx(c.sql, async (tx) => {
      const marked = await c.batches.cancelOneUnsealed(tx);
      if (!marked) return false;
      const error = { message: "the batch was not sealed in time", code: "seal_timeout" };
      const { n: cancelled } = await c.jobs.cancelQueuedOfBatch(marked.id, { skipLocked: true, error }, tx);
      await c.batches.finaliseIfDone(marked.id, tx);
      if (cancelled > 0) c.metrics.transitions.inc({ from: "queued", to: "cancelled" }, cancelled);
      return true;
    });
    if (!done) break;
  }
  return n;
}

export function createBatchService(c: BatchCtx) {
  return {
    create: (tenant: string, input: Parameters<typeof create>[2]) => create(c, tenant, input),
    addJobs: (id: string, scope: TenantScope, input: SubmitInput[]) => addJobs(c, id, scope, input),
    seal: (id: string, scope: TenantScope) => seal(c, id, scope),
    get: (id: string, scope: TenantScope) => get(c, id, scope),
    list: (f: Parameters<typeof list>[1]) => list(c, f),
    cancel: (id: string, scope: TenantScope) => cancel(c, id, scope),
    retry: (id: string, scope: TenantScope) => retry(c, id, scope),
    throughput: (scope: TenantScope, minutes: number) => c.batches.throughput(scope, minutes),
    cancelUnsealed: (limit?: number) => cancelUnsealed(c, limit),
  };
}

export type BatchService = ReturnType<typeof createBatchService>;
