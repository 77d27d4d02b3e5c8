import type { Queryable } from "../db/client.js";
import * as settings from "./queues/settings.js";
import type { QueueSettings } from "./queues/settings.js";
import * as waits from "./queues/waitReasons.js";

// The statements live in queues/: settings.ts (the settings row, which claims lock as the
// gate) and waitReasons.ts (counts and why jobs wait). This object hands them out bound to
// the process's pool; each still takes a transaction as `q`.
export { NO_SETTINGS, type QueueSettings } from "./queues/settings.js";
export { WAIT_REASONS, type WaitReason } from "./queues/waitReasons.js";

export function queuesRepository(sql: Queryable) {
  return {
    get: (queue: string, tenant: string, q: Queryable = sql) => settings.getSettings(queue, tenant, q),
    /** Replaces the settings; none at all removes the row, so the queue takes the free claim again. */
    replace: (queue: string, tenant: string, s: QueueSettings, q: Queryable = sql) => settings.replaceSettings(queue, tenant, s, q),
    pause: (queue: string, tenant: string, q: Queryable = sql) => settings.pauseQueue(queue, tenant, q),
    resume: (queue: string, tenant: string, q: Queryable = sql) => settings.resumeQueue(queue, tenant, q),
    cappedQueues: (q: Queryable = sql) => settings.cappedQueues(q),
    counts: (queue: string, tenant: string, q: Queryable = sql) => waits.countByStatus(queue, tenant, q),
    waitingBecause: (queues: string[], tenant: string | null, q: Queryable = sql) => waits.waitingBecause(queues, tenant, q),
  };
}

export type QueuesRepository = ReturnType<typeof queuesRepository>;
