import { createHmac } from "node:crypto";
import dns from "node:dns";
import http from "node:http";
import https from "node:https";
import type net from "node:net";
import type { Logger } from "pino";
import type { Config } from "../config.js";
import { hostOf, isBlockedAddress, parseAllowHosts } from "../domain/addresses.js";
import type { Metrics } from "../metrics.js";
import type { OutboxDelivery, OutboxRepository } from "../repositories/outbox.js";
import type { BatchRow } from "../repositories/batches.js";
import type { JobRow } from "../repositories/jobs.js";
import type { TenantsRepository } from "../repositories/tenants.js";
import { batchDto, camelize, jobDto } from "./representation.js";
import { endSpan, startDeliverySpan } from "../tracing.js";

/** Standard Webhooks: `v1,<base64 HMAC-SHA256(key, "id.timestamp.body")>`, key = base64-decoded secret after `whsec_`. */
export function signWebhook(secret: string, msgId: string, timestamp: number, body: string): string {
  const key = Buffer.from(secret.startsWith("whsec_") ? secret.slice(6) : secret, "base64");
  return `v1,${createHmac("sha256", key).update(`${msgId}.${timestamp}.${body}`).digest("base64")}`;
}

/** The event's `data`: the public representation of the row the finalising statement returned. */
export function eventData(eventType: string, snapshot: Record<string, unknown>): unknown {
  return eventType.startsWith("job.") ? jobDto(camelize<JobRow>(snapshot)) : batchDto(camelize<BatchRow>(snapshot));
}

export function eventBody(d: Pick<OutboxDelivery, "eventType" | "dataText" | "createdAt">, snapshot?: Record<string, unknown>): string {
  const data = eventData(d.eventType, snapshot ?? (JSON.parse(d.dataText) as Record<string, unknown>));
  return JSON.stringify({ type: d.eventType, timestamp: d.createdAt.toISOString(), data });
}

/** The trace context a job event's snapshot carries (none for batch events). */
const traceOfSnapshot = (s: Record<string, unknown>) => ({
  traceparent: typeof s.traceparent === "string" ? s.traceparent : null,
  tracestate: typeof s.tracestate === "string" ? s.tracestate : null,
});

export { isBlockedAddress };

/** Delivery refused by policy: final, never retried. */
export class RefusedDestination extends Error {}

/**
 * The address check runs inside the connection's own DNS lookup, so the
 * address that is checked is the address that is connected to (no window
 * for DNS rebinding between a check and the request).
 */
const guardedLookup: net.LookupFunction = (hostname, options, callback) => {
  dns.lookup(hostname, { ...options, all: true }, (e, addresses) => {
    if (e) return callback(e, "", 0);
    const bad = addresses.find((a) => isBlockedAddress(a.address));
    if (bad) return callback(new RefusedDestination(`${hostname} resolves to non-public address ${bad.address}`), "", 0);
    if ((options as dns.LookupOptions).all) return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, addresses);
    const first = addresses[0];
    if (!first) return callback(new Error(`${hostname} has no address`), "", 0);
    callback(null, first.address, first.family);
  });
};

const agents = { "http:": new http.Agent({ keepAlive: true, maxSockets: 64 }), "https:": new https.Agent({ keepAlive: true, maxSockets: 64 }) };

export type PostResult = { kind: "response"; status: number } | { kind: "error"; message: string } | { kind: "refused"; message: string };

/** One signed POST. Never throws: every way it can end is a PostResult. */
export function postWebhook(
  url: string,
  headers: Record<string, string>,
  body: string,
  o: { timeoutMs: number; allowHosts: ReadonlySet<string> },
): Promise<PostResult> {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return Promise.resolve({ kind: "refused", message: "webhook URL is not a valid URL" });
  }
  if (u.protocol !== "http:" && u.protocol !== "https:")
    return Promise.resolve({ kind: "refused", message: `webhook URL scheme ${u.protocol} is not http(s)` });
  if (u.username || u.password) return Promise.resolve({ kind: "refused", message: "webhook URL must not carry credentials" });
  const host = hostOf(u);
  const allowed = o.allowHosts.has(host);
  // Literal addresses never reach the lookup hook, so they are checked here.
  if (!allowed && isBlockedAddress(host))
    return Promise.resolve({ kind: "refused", message: `webhook host ${host} is a non-public address` });
  return new Promise((resolve) => {
    let settled = false;
    const done = (r: PostResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(r);
    };
    const mod = u.protocol === "https:" ? https : http;
    const req = mod.request(
      u,
      {
        method: "POST",
        agent: agents[u.protocol as "http:" | "https:"],
        headers: { ...headers, "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) },
        ...(allowed ? {} : { lookup: guardedLookup }),
      },
      (res) => {
        // The body is not needed; drain it so the socket can be reused, but not forever.
        const drain = setTimeout(() => res.destroy(), o.timeoutMs);
        res.once("close", () => clearTimeout(drain));
        res.resume();
        done({ kind: "response", status: res.statusCode ?? 0 });
      },
    );
    const timer = setTimeout(() => req.destroy(new Error(`no response within ${o.timeoutMs} ms`)), o.timeoutMs);
    req.on("error", (e) =>
      done(e instanceof RefusedDestination ? { kind: "refused", message: e.message } : { kind: "error", message: e.message }),
    );
    req.end(body);
  });
}

export type DeliveryOutcome = "delivered" | "retry" | "dead" | "refused" | "lease_lost";

export interface DispatcherDeps {
  outbox: OutboxRepository;
  tenants: TenantsRepository;
  metrics: Metrics;
  logger: Logger;
  config: Pick<
    Config,
    | "JOBLINE_WEBHOOK_ALLOW_HOSTS"
    | "JOBLINE_WEBHOOK_MAX_ATTEMPTS"
    | "JOBLINE_WEBHOOK_RETRY_BASE_MS"
    | "JOBLINE_WEBHOOK_TIMEOUT_MS"
    | "JOBLINE_WEBHOOK_CONCURRENCY"
    | "JOBLINE_WEBHOOK_POLL_MS"
  >;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Delivery of leased outbox rows: sign, post under the address policy, settle the row while
 * its lease holds. The loop that claims and runs them is worker/webhooks.ts.
 */
export function createWebhookDelivery(d: DispatcherDeps) {
  const cfg = d.config;
  const allowHosts = parseAllowHosts(cfg.JOBLINE_WEBHOOK_ALLOW_HOSTS);
  // Long enough for the request to time out and the settle to be retried through a short database blip.
  const leaseMs = cfg.JOBLINE_WEBHOOK_TIMEOUT_MS + 30_000;
  const log = d.logger.child({ component: "webhooks" });

  /** Settles a claimed row, retrying through transient database errors while the lease still holds. */
  async function settle<T>(what: string, leaseDeadline: number, f: () => Promise<T>): Promise<T | undefined> {
    for (;;) {
      try {
        return await f();
      } catch (e) {
        if (Date.now() + 1000 > leaseDeadline) {
          log.error({ err: e }, `could not ${what}; the row is retried after its lease expires`);
          return undefined;
        }
        await sleep(500);
      }
    }
  }

  async function deliver(r: OutboxDelivery): Promise<DeliveryOutcome> {
    const leaseDeadline = Date.now() + leaseMs;
    const msgId = `msg_${r.id}`;
    const snapshot = JSON.parse(r.dataText) as Record<string, unknown>;
    const body = eventBody(r, snapshot);
    const secret = r.secret ?? (await d.tenants.ensure(r.tenant));
    const ts = Math.floor(Date.now() / 1000);
    // The job's trace goes on through the receiver: traceparent names this delivery's span.
    const trace = traceOfSnapshot(snapshot);
    const { span, carrier } = startDeliverySpan(trace, r.eventType, r.url);
    const traceHeaders: Record<string, string> = {};
    if (carrier.traceparent) traceHeaders.traceparent = carrier.traceparent;
    if (carrier.traceparent && carrier.tracestate) traceHeaders.tracestate = carrier.tracestate;
    const res = await postWebhook(
      r.url,
      {
        "webhook-id": msgId,
        "webhook-timestamp": String(ts),
        "webhook-signature": signWebhook(secret, msgId, ts, body),
        "user-agent": "jobline-webhooks/1",
        ...traceHeaders,
      },
      body,
      { timeoutMs: cfg.JOBLINE_WEBHOOK_TIMEOUT_MS, allowHosts },
    );
    if (res.kind === "response") span.setAttribute("http.response.status_code", res.status);
    endSpan(span, res.kind === "response" && res.status < 300 ? { ok: true } : { ok: false, error: res.kind === "response" ? `HTTP ${res.status}` : res.message });
    let outcome: DeliveryOutcome;
    if (res.kind === "response" && res.status >= 200 && res.status < 300) {
      const won = await settle("mark delivered", leaseDeadline, () => d.outbox.markDelivered(r.id, r.leaseToken));
      outcome = won ? "delivered" : "lease_lost";
    } else {
      const error = res.kind === "response" ? `receiver answered HTTP ${res.status}` : res.message;
      const status = await settle("record a failed attempt", leaseDeadline, () =>
        d.outbox.markFailed(r.id, r.leaseToken, {
          error,
          retryBaseMs: cfg.JOBLINE_WEBHOOK_RETRY_BASE_MS,
          maxAttempts: cfg.JOBLINE_WEBHOOK_MAX_ATTEMPTS,
          final: res.kind === "refused",
        }),
      );
      outcome = !status ? "lease_lost" : res.kind === "refused" ? "refused" : status === "dead" ? "dead" : "retry";
      if (outcome === "refused" || outcome === "dead") log.warn({ outbox: r.id, url: r.url, error }, `webhook ${outcome}`);
    }
    d.metrics.webhookDeliveries.inc({ outcome });
    return outcome;
  }

  return {
    leaseMs,
    claimDue: (n: number) => d.outbox.claimDue(n, leaseMs),
    deliver,
  };
}

export type WebhookDelivery = ReturnType<typeof createWebhookDelivery>;
