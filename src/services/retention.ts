import type { Sql } from "../db/client.js";
import type { OutboxRepository } from "../repositories/outbox.js";
import * as retention from "../repositories/retention.js";

/** Runs `step` until it reports that it found less than a full chunk. */
async function drain(step: () => Promise<{ deleted: number; full: boolean }>): Promise<number> {
  let total = 0;
  for (;;) {
    const r = await step();
    total += r.deleted;
    if (!r.full) return total;
  }
}

export function createRetentionService(deps: { sql: Sql; outbox: OutboxRepository; retentionDays: number }) {
  const { sql, outbox } = deps;
  /**
   * One retention pass over rows older than the retention period, about `chunk` rows per
   * statement so none holds many locks or runs long: finished stand-alone jobs, terminal
   * batches with their jobs, delivered and dead outbox rows, idle fairness groups.
   */
  async function retainOnce(chunk = 1000): Promise<{ jobs: number; batches: number; events: number; groups: number }> {
    const cutoff = await retention.retentionCutoff(deps.retentionDays, sql);
    const full = (n: number) => ({ deleted: n, full: n === chunk });
    const jobs = await drain(async () => full(await retention.deleteFinishedJobs(cutoff, chunk, sql)));
    const batches = await drain(async () => {
      const n = await retention.deleteFinishedBatches(cutoff, chunk, sql);
      return { deleted: n, full: n > 0 };
    });
    const events = await drain(async () => full(await outbox.deleteSettledBefore(cutoff, chunk)));
    const groups = await drain(async () => full(await retention.deleteIdleGroups(cutoff, chunk, sql)));
    return { jobs, batches, events, groups };
  }
  return { retainOnce };
}

export type RetentionService = ReturnType<typeof createRetentionService>;
