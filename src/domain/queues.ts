/** Why a queue's queued jobs wait now (the queue views' waitingBecause); several may hold at once. */
export const WAIT_REASONS = ["paused", "concurrency", "groupConcurrency", "rateLimit", "scheduled", "batchPreparing"] as const;
export type WaitReason = (typeof WAIT_REASONS)[number];
