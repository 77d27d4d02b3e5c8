import type { Logger } from "pino";

/**
 * A loop that runs `pass` until stopped, sleeping the milliseconds it returns between passes; a
 * failed pass is logged (`failed`) and retried after `retryMs`.
 */
export function repeat(name: string, pass: () => Promise<number>, retryMs: number, c: { logger: Logger }, failed = "maintenance tick failed") {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const loop = async () => {
    if (stopped) return;
    let wait = retryMs;
    running = pass().then(
      (w) => {
        wait = w;
      },
      (e: unknown) => c.logger.warn({ err: e, loop: name }, failed),
    );
    await running;
    running = null;
    if (!stopped) timer = setTimeout(loop, wait);
  };
  timer = setTimeout(loop, 0);
  return {
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      await running;
    },
  };
}

/** A loop that runs `tick` every `intervalMs` until stopped; a failed tick is logged and retried next time. */
export function every(name: string, intervalMs: number, tick: () => Promise<unknown>, c: { logger: Logger }) {
  return repeat(name, () => tick().then(() => intervalMs), intervalMs, c);
}
