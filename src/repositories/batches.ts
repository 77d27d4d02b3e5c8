import type { Queryable } from "../db/client.js";
import * as read from "./batches/read.js";
import * as t from "./batches/transitions.js";
import { finaliseIfDone } from "./jobs/finalise.js";

// The statements live in batches/ by duty: transitions.ts (guarded writes of a batch row),
// read.ts, rows.ts (row types, shared fragments). This object hands them out bound to the
// process's pool; each still takes a transaction as `q`.
export type { BatchCounts, BatchCursor, BatchRow, CountedBatch } from "./batches/rows.js";
export { zeroCounts } from "./batches/rows.js";

export function batchesRepository(sql: Queryable) {
  return {
    create: (a: Parameters<typeof t.create>[0], q: Queryable = sql) => t.create(a, q),
    reserveIfPreparing: (id: string, tenant: string | null, n: number, q: Queryable) => t.reserveIfPreparing(id, tenant, n, q),
    sealIfPreparing: (id: string, tenant: string | null, q: Queryable = sql) => t.sealIfPreparing(id, tenant, q),
    /** Finalises a sealed batch none of whose jobs is left (see finalise.ts). */
    finaliseIfDone: (id: string, q: Queryable = sql) => finaliseIfDone(id, q),
    requestCancelIfUnfinished: (id: string, generation: number, q: Queryable) => t.requestCancelIfUnfinished(id, generation, q),
    cancelOneUnsealed: (q: Queryable) => t.cancelOneUnsealed(q),
    cancelIfPreparing: (id: string, tenant: string | null, q: Queryable) => t.cancelIfPreparing(id, tenant, q),
    retryIfFinished: (id: string, tenant: string | null, q: Queryable) => t.retryIfFinished(id, tenant, q),

    findById: (id: string, tenant: string | null, q: Queryable = sql) => read.findById(id, tenant, q),
    findCounted: (id: string, tenant: string | null, q: Queryable = sql) => read.findCounted(id, tenant, q),
    list: (f: Parameters<typeof read.list>[0], q: Queryable = sql) => read.list(f, q),
    counts: (id: string, q: Queryable = sql) => read.counts(id, q),
    queuedQueues: (id: string, q: Queryable = sql) => read.queuedQueues(id, q),
    throughput: (tenant: string | null, minutes: number, q: Queryable = sql) => read.throughput(tenant, minutes, q),
  };
}

export type BatchesRepository = ReturnType<typeof batchesRepository>;
