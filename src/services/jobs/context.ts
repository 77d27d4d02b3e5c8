import type { Config } from "../../config.js";
import type { Sql } from "../../db/client.js";
import type { Metrics } from "../../metrics.js";
import type { JobsRepository } from "../../repositories/jobs.js";
import type { FinishedWaits } from "../finishedWaits.js";
import type { Notifier } from "../notifier.js";
import type { CappedQueues } from "../queues/capped.js";
import type { createLongPoll } from "./longPoll.js";
import type { SharedStatements } from "./sharedStatements.js";

/** `queue`, when the caller knows it: a completion frees a slot there (long polls are woken). */
export type AckItem = { id: string; leaseToken: string; result?: unknown; queue?: string };

/** What every job use case needs: the repository, the shared statements, the long poll. */
export interface JobCtx {
  sql: Sql;
  jobs: JobsRepository;
  notifier: Notifier;
  capped: CappedQueues;
  finishedWaits: FinishedWaits;
  metrics: Metrics;
  config: Pick<Config, "JOBLINE_BACKOFF_BASE_MS" | "JOBLINE_BACKOFF_MAX_MS">;
  random: () => number;
  shared: SharedStatements;
  promoteIfDue: (always?: boolean) => Promise<Set<string>>;
  claimNext: ReturnType<typeof createLongPoll>;
}
