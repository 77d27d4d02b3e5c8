import type { Logger } from "pino";

/** A loop that runs `tick` every `intervalMs` until stopped; a failed tick is logged and retried next time. */
export function every(name: string, intervalMs: number, tick: () => Promise<unknown>, c: { logger: Logger }) {
  let timer: NodeJS.Timeout | null = null;
  let running: Promise<unknown> | null = null;
  let stopped = false;
  const loop = async () => {
    if (stopped) return;
    running = tick().catch((e: unknown) => c.logger.warn({ err: e, loop: name }, "maintenance tick failed"));
    await running;
    running = null;
    if (!stopped) timer = setTimeout(loop, intervalMs);
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
