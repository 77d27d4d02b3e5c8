export interface BackoffConfig {
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_BACKOFF: BackoffConfig = { baseMs: 1000, maxMs: 3_600_000 };

/** Full jitter: uniform in [0, min(max, base * 2^(attempts-1))]. `u` in [0,1) is passed in for tests. */
export function backoffMs(attempts: number, cfg: BackoffConfig, u: number): number {
  const ceiling = Math.min(cfg.maxMs, cfg.baseMs * 2 ** Math.max(0, attempts - 1));
  return Math.floor(u * ceiling);
}
