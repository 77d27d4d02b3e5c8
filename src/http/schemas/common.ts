// Rules shared by every resource's schemas: each rule once.
import { z } from "zod";
import { jsonProblem, pgUnsafeString } from "../../domain/json.js";

export { jsonProblem };

export const JsonValue = z.unknown().superRefine((v, ctx) => {
  const p = jsonProblem(v);
  if (p) ctx.addIssue({ code: "custom", message: p });
});

export const safeText = (max: number) =>
  z
    .string()
    .min(1)
    .max(max)
    .refine((s) => pgUnsafeString(s) === null, "contains characters PostgreSQL cannot store");

const NAME_PATTERN = /^[A-Za-z0-9_.:-]+$/;
/** A queue, kind or tenant name. */
export const Name = safeText(128).regex(NAME_PATTERN, "letters, digits and _ . : - only");
export const TenantName = Name;
/** The tenant a request may name in its body (jobs, batches). */
export const NamedTenant = TenantName.optional().describe("Only a platform key (tenant `*`) may name it; default `default`.");
export const Uuid = z.uuid();
export const WorkerId = safeText(200);
export const LeaseSeconds = z.number().int().min(1).max(3600);
/** An attempt's execution timeout: a job's timeoutSeconds, a queue's defaultTimeoutSeconds (DESIGN.md 1..86400). */
export const TimeoutSeconds = z.number().int().min(1).max(86_400);
/** A long poll's wait in ms (DESIGN.md ≤ 30000): process-next's body and GET /v1/jobs/{id}?waitMs=. */
const waitMs = (n: z.ZodNumber | z.ZodCoercedNumber) => n.int().min(0).max(30_000);
export const WaitMs = waitMs(z.number());
/** The same rule read from a query string. */
export const WaitMsQuery = waitMs(z.coerce.number());
/**
 * A body's W3C tracestate: printable ASCII, at most 512. Empty or blank is accepted, as the spec asks
 * of receivers, and stored as none: domain validTracestate decides what is kept (the spec: avoid sending empty).
 */
export const Tracestate = z.string().max(512).regex(/^[\x20-\x7e]*$/);
export const WebhookUrl = z
  .url({ protocol: /^https?$/ })
  .max(2048)
  .refine((s) => pgUnsafeString(s) === null, "invalid characters")
  .describe(
    "http(s), no credentials. A literal loopback, private, link-local or otherwise non-public address is refused " +
      "(400 `webhook_url_not_allowed`) unless its host is in JOBLINE_WEBHOOK_ALLOW_HOSTS; names resolving to one are refused at delivery.",
  );

export const IdParams = z.strictObject({ id: Uuid });
/** The body of an action that takes none (cancel, seal, retry): absent, null or `{}`. */
export const EmptyBody = z.strictObject({}).nullish();

/** ISO 8601 instants in responses, documented as format: date-time. */
export const Timestamp = z.iso.datetime({ offset: true });
const MIN_INSTANT = Date.parse("1970-01-01T00:00:00Z");
const MAX_INSTANT = Date.parse("9999-12-31T23:59:59.999Z");
/**
 * An instant a request gives (runAt, expiresAt, createdAfter/Before). Year 0 or 10000 in UTC is a 500
 * from PostgreSQL, and years below 100 come back from the driver as 20xx; the epoch is a safe floor.
 */
export const InputTimestamp = Timestamp.refine((s) => {
  const t = Date.parse(s);
  return t >= MIN_INSTANT && t <= MAX_INSTANT;
}, "must be between 1970-01-01 and 9999-12-31 (UTC)");

export const IfMatchHeaders = z.object({ "if-match": z.string().max(200).optional() });

/** `"3"`, `W/"3"` or `3` → 3; `*` → undefined (any version); anything else can match no version. */
export function parseIfMatch(h: string | undefined): number | undefined {
  if (h === undefined || h.trim() === "*") return undefined;
  const m = /^\s*(?:W\/)?(?:"(\d{1,9})"|(\d{1,9}))\s*$/.exec(h);
  return m ? Number(m[1] ?? m[2]) : -1;
}
