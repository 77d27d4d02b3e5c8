import { storable } from "../../domain/json.js";
import { err } from "../../domain/outcomes.js";
import { normaliseTraceparent, validTracestate } from "../../domain/traceContext.js";
import type { NewJob } from "../../repositories/jobs.js";

export const MAX_PAYLOAD_BYTES = 256 * 1024;

/** `null` tenant scope means a platform key (tenant `*`) that sees every tenant. */
export type TenantScope = string | null;

export interface SubmitInput {
  queue: string;
  kind: string;
  payload: unknown;
  priority?: number | undefined;
  groupKey?: string | undefined;
  runAt?: string | undefined;
  maxAttempts?: number | undefined;
  webhookUrl?: string | undefined;
  timeoutSeconds?: number | undefined;
  expiresAt?: string | undefined;
  ttlSeconds?: number | undefined;
  tags?: string[] | undefined;
  dedupe?: { key: string; replace?: boolean | undefined } | undefined;
  dependsOn?: { jobs?: string[] | undefined; batches?: string[] | undefined } | undefined;
  /** W3C trace context (validated by the HTTP schema, or taken from the headers). */
  traceparent?: string | undefined;
  tracestate?: string | undefined;
}

/** Stable JSON (sorted keys), so an idempotent replay matches however the client orders fields. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

export const payloadBytes = (p: unknown) => Buffer.byteLength(JSON.stringify(p ?? null));

/** expiresAt, or ttlSeconds from now (by this process's clock: a TTL is coarse by nature). */
export const expiryOf = (i: SubmitInput): Date | null =>
  i.expiresAt ? new Date(i.expiresAt) : i.ttlSeconds !== undefined ? new Date(Date.now() + i.ttlSeconds * 1000) : null;

/** Why a job's result cannot be stored: held to the payload's 256 KiB (413), and to what jsonb stores (400). */
export function resultRefusal(result: unknown) {
  const s = storable(result);
  if (!s.ok) return err("invalid", `result ${s.problem}`);
  return s.bytes > MAX_PAYLOAD_BYTES ? err("payload_too_large", "result exceeds 256 KiB") : null;
}

export function toNewJob(tenant: string, i: SubmitInput, extra: Partial<NewJob> = {}): NewJob {
  return {
    tenant,
    queue: i.queue,
    kind: i.kind,
    payload: i.payload ?? null,
    priority: i.priority ?? 0,
    groupKey: i.groupKey ?? null,
    runAt: i.runAt ? new Date(i.runAt) : null,
    maxAttempts: i.maxAttempts ?? 5,
    webhookUrl: i.webhookUrl ?? null,
    timeoutSeconds: i.timeoutSeconds ?? null,
    expiresAt: expiryOf(i),
    tags: i.tags ? [...new Set(i.tags)] : [],
    idempotencyKey: null,
    requestHash: null,
    batchId: null,
    traceparent: normaliseTraceparent(i.traceparent),
    tracestate: i.traceparent ? validTracestate(i.tracestate) : null,
    ...extra,
  };
}

/** UUIDs as clients may send them (any case) against PostgreSQL's lower-case text. */
export const sameUuid = (a: string | null, b: string) => a !== null && a.toLowerCase() === b.toLowerCase();
