import { createHash } from "node:crypto";
import { isUniqueViolationOn } from "../../db/errors.js";
import { inTx, retryIfLost } from "../../db/tx.js";
import { uuidv7 } from "../../domain/ids.js";
import { storableProblem } from "../../domain/json.js";
import { err, ok } from "../../domain/outcomes.js";
import type { JobRow } from "../../repositories/jobs.js";
import { endSpan, startSubmitSpan } from "../../tracing.js";
import { announce } from "./bookkeeping.js";
import type { JobCtx } from "./context.js";
import { canonicalJson, MAX_PAYLOAD_BYTES, payloadBytes, type SubmitInput, toNewJob } from "./input.js";
import { linkChildren, lockAndCheck, type Parents, parentsOf } from "./workflows.js";

/**
 * A submit inside its span (src/tracing.ts): the job stores the span's trace context, which
 * is the caller's own when no OpenTelemetry SDK records spans.
 */
export async function submit(c: JobCtx, tenant: string, input: SubmitInput, idempotencyKey?: string) {
  const { span, carrier } = startSubmitSpan({ traceparent: input.traceparent ?? null, tracestate: input.tracestate ?? null }, input.queue, input.kind);
  try {
    const out = await submitUntraced(c, tenant, { ...input, traceparent: carrier.traceparent ?? undefined, tracestate: carrier.tracestate ?? undefined }, idempotencyKey);
    endSpan(span, out.ok ? { ok: true, id: out.value.id } : { ok: false, error: out.detail ?? out.error });
    return out;
  } catch (e) {
    endSpan(span, { ok: false, error: e });
    throw e;
  }
}

async function submitUntraced(c: JobCtx, tenant: string, input: SubmitInput, idempotencyKey?: string) {
  if (payloadBytes(input.payload) > MAX_PAYLOAD_BYTES) return err("payload_too_large", "payload exceeds 256 KiB");
  // Trace context is not part of the request: a retry from another span replays the same job.
  const { traceparent: _tp, tracestate: _ts, ...request } = input;
  const requestHash = idempotencyKey
    ? createHash("sha256").update(canonicalJson({ tenant, ...request })).digest("hex")
    : null;
  const bad = storableProblem(input.payload) ?? (input.runAt && Number.isNaN(Date.parse(input.runAt)) ? "runAt is not a date" : null);
  if (bad) return err("invalid", bad);
  const parents = parentsOf(input.dependsOn);
  if (parents && input.dedupe) return err("invalid", "dedupe and dependsOn cannot be combined");
  if (parents) return submitWithParents(c, tenant, input, parents, idempotencyKey, requestHash);
  if (input.dedupe) return submitDeduped(c, tenant, input, input.dedupe, idempotencyKey, requestHash);
  if (!idempotencyKey) {
    const row = await c.shared.submitTogether(input.queue, { ...toNewJob(tenant, input), id: uuidv7(Date.now()) });
    announce(c, row);
    return ok(row);
  }
  // Keyed: a second insert after a lost one finds the first (ON CONFLICT DO NOTHING, then the read below).
  const row = await retryIfLost(() => c.jobs.insert(toNewJob(tenant, input, { idempotencyKey, requestHash })), true);
  if (row) {
    announce(c, row);
    return ok(row);
  }
  return idempotentReplay(c, tenant, idempotencyKey, requestHash);
}

/**
 * A submit with dependsOn, in one transaction: the parents locked and checked, the job inserted
 * waiting, its edges written, and edges to parents already finished resolved at once (so a
 * parent that failed before this submit answers 201 with the job cancelled, dependency_failed).
 */
async function submitWithParents(
  c: JobCtx,
  tenant: string,
  input: SubmitInput,
  parents: Parents,
  idempotencyKey: string | undefined,
  requestHash: string | null,
) {
  const out = await inTx(c.sql, async (tx) => {
    const checked = await lockAndCheck(tenant, [parents], tx);
    if (!checked.locked) return { kind: "refused" as const, error: checked.error! };
    const extra = { idempotencyKey: idempotencyKey ?? null, requestHash, dependsOn: parents };
    const row = await c.jobs.insert(toNewJob(tenant, input, extra), tx);
    if (!row) return { kind: "replay" as const };
    const changed = await linkChildren([{ id: row.id, parents }], checked.locked, tx);
    return { kind: "made" as const, row: changed ? ((await c.jobs.findById(row.id, null, tx)) ?? row) : row };
  });
  if (out.kind === "refused") return out.error;
  if (out.kind === "replay") return idempotentReplay(c, tenant, idempotencyKey!, requestHash);
  return ok(out.row);
}

/** The job an Idempotency-Key made, for a submit that found the key taken. */
async function idempotentReplay(c: JobCtx, tenant: string, idempotencyKey: string, requestHash: string | null) {
  // The conflicting insert waited for the winner to commit, so it is visible now.
  const winner = await c.jobs.findByIdempotencyKey(tenant, idempotencyKey);
  if (!winner) return err("not_found", "the job for this idempotency key was removed; retry");
  if (winner.requestHash !== requestHash)
    return err("idempotency_mismatch", "this Idempotency-Key was used with a different request body");
  return ok(winner, true);
}

/**
 * A submit with `dedupe`: one statement creates the job or returns the live one with that key
 * (replacing payload, priority and runAt when asked and it is still queued). An Idempotency-Key
 * already used returns the job it made (or 422 for another body); a concurrent first use is
 * caught by the key's unique index.
 */
async function submitDeduped(
  c: JobCtx,
  tenant: string,
  input: SubmitInput,
  dedupe: { key: string; replace?: boolean | undefined },
  idempotencyKey: string | undefined,
  requestHash: string | null,
) {
  // The key first: a live match would answer before the insert reaches the key's index.
  if (idempotencyKey && (await c.jobs.findByIdempotencyKey(tenant, idempotencyKey)))
    return idempotentReplay(c, tenant, idempotencyKey, requestHash);
  const job = { ...toNewJob(tenant, input, { idempotencyKey: idempotencyKey ?? null, requestHash }), dedupeKey: dedupe.key };
  let out: { row: JobRow; inserted: boolean };
  try {
    // Run again after a lost commit: the second finds the first as its match.
    out = await retryIfLost(() => c.jobs.insertDeduped(job, dedupe.replace === true), true);
  } catch (e) {
    if (idempotencyKey && isUniqueViolationOn(e, "jobs_idempotency_uidx")) return idempotentReplay(c, tenant, idempotencyKey, requestHash);
    throw e;
  }
  // Claimable now, by the database's clock (a join that changed nothing wakes a poll for nothing: harmless).
  if (out.row.status === "queued" && out.row.runAt.getTime() <= out.row.updatedAt.getTime())
    c.notifier.notify(out.row.queue, { kind: out.row.kind, tenant: out.row.tenant });
  if (out.inserted) return ok(out.row);
  return { ...ok(out.row, true), deduplicated: true as const };
}
