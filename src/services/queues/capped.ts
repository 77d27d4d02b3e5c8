import type { QueuesRepository } from "../../repositories/queues.js";
import type { Notifier } from "../notifier.js";

/** How stale this process's list of queues with settings may get before a finalisation refreshes it. */
const REFRESH_MS = 1000;

/**
 * Which queue names have settings, as this process last saw them. It only routes (which claim
 * text to run, which finalisations announce a freed slot); it never decides a limit: the gated
 * claim is right for any queue, and the free one takes nothing from a queue with settings.
 */
export function createCappedQueues(queues: QueuesRepository, notifier: Notifier) {
  let known = new Set<string>();
  let refreshedAt = 0;
  let refreshing: Promise<void> | null = null;

  const refresh = () => {
    refreshing ??= queues
      .cappedQueues()
      .then((q) => {
        known = new Set(q);
        refreshedAt = Date.now();
      })
      .catch(() => {})
      .finally(() => {
        refreshing = null;
      });
    return refreshing;
  };

  return {
    /** True when a claim of these queues should take the gated text. */
    any: (names: string[]) => names.some((n) => known.has(n)),
    add: (name: string) => {
      known.add(name);
    },
    refresh,
    /**
     * Jobs of these queues left a slot (finished, failed, requeued, cancelled): wake the long
     * polls of the ones with settings, here and in other processes. In the background, the
     * list is refreshed when older than REFRESH_MS, so other processes' settings are learnt.
     */
    freed(names: Iterable<string>) {
      if (Date.now() - refreshedAt > REFRESH_MS) void refresh();
      for (const n of new Set(names)) if (known.has(n)) notifier.notify(n);
    },
  };
}

export type CappedQueues = ReturnType<typeof createCappedQueues>;
