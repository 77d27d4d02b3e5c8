// `jobline queues [get|set|pause|resume Q]`: takes options already parsed by commander
// (camel-cased) and talks to the server with plain fetch.
import { call, remoteFromEnv, report, UsageError } from "./cliRemote.js";

export const QUEUES_HELP = `jobline queues
jobline queues get|pause|resume Q [--tenant T]
jobline queues set Q [--concurrency N] [--group-concurrency N] [--rate-limit LIMIT/SECONDS] [--default-timeout S] [--paused] [--tenant T]
  Queue controls (admin key; --tenant with a platform key). set replaces every setting: one not given is no limit.`;

export interface QueueCliOptions {
  tenant?: string | undefined;
  concurrency?: string | undefined;
  groupConcurrency?: string | undefined;
  rateLimit?: string | undefined;
  defaultTimeout?: string | undefined;
  paused?: boolean | undefined;
}

const positive = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number >= 1`);
  return n;
};

/** `queues set`'s options as the PUT body: every setting not given is no limit. */
export function queueSettingsFromOptions(o: QueueCliOptions) {
  let rateLimit: { limit: number; periodSeconds: number } | undefined;
  if (o.rateLimit !== undefined) {
    const m = /^(\d+)\/(\d+)$/.exec(o.rateLimit);
    if (!m) throw new UsageError("--rate-limit is LIMIT/SECONDS, e.g. 100/60");
    rateLimit = { limit: positive("rate-limit", m[1])!, periodSeconds: positive("rate-limit", m[2])! };
  }
  const concurrency = positive("concurrency", o.concurrency);
  const groupConcurrency = positive("group-concurrency", o.groupConcurrency);
  const defaultTimeoutSeconds = positive("default-timeout", o.defaultTimeout);
  return {
    paused: o.paused === true,
    ...(concurrency === undefined ? {} : { concurrency }),
    ...(groupConcurrency === undefined ? {} : { groupConcurrency }),
    ...(rateLimit ? { rateLimit } : {}),
    ...(defaultTimeoutSeconds === undefined ? {} : { defaultTimeoutSeconds }),
  };
}

/** Returns the exit code: 0, or 1 for an HTTP error (its problem on stderr); usage errors throw. */
export async function queuesCommand(action: string | undefined, queue: string | undefined, o: QueueCliOptions = {}) {
  if (action === undefined) return report(await call(remoteFromEnv(), "GET", "/v1/queues"));
  if (!queue || !["get", "set", "pause", "resume"].includes(action)) throw new UsageError(QUEUES_HELP);
  // Validate before reading the environment, so a usage error is reported as one.
  const body = action === "set" ? queueSettingsFromOptions(o) : undefined;
  const r = remoteFromEnv();
  const path = `/v1/queues/${encodeURIComponent(queue)}${o.tenant === undefined ? "" : `?tenant=${encodeURIComponent(o.tenant)}`}`;
  if (action === "get") return report(await call(r, "GET", path));
  if (action === "set") return report(await call(r, "PUT", path, body));
  const [base, query] = path.split("?");
  return report(await call(r, "POST", `${base}/${action}${query ? `?${query}` : ""}`));
}
