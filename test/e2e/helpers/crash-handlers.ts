import type { HandlerSpec } from "../../../src/server.js";

/**
 * Handlers for `jobline worker` with JOBLINE_HANDLERS_MODULE, used by the
 * crash test: a job's first attempt blocks forever (the process is then
 * killed), a later attempt completes. Progress is printed for the test to read.
 */
const spec: HandlerSpec = {
  queues: ["crash"],
  concurrency: 4,
  leaseSeconds: Number(process.env.CRASH_LEASE_SECONDS ?? 2),
  waitMs: 1000,
  handlers: {
    block: async (job, ctx) => {
      console.log(`HANDLING ${job.id} attempt ${job.attempts} pid ${process.pid}`);
      if (job.attempts === 1) await new Promise((_, reject) => ctx.signal.addEventListener("abort", () => reject(ctx.signal.reason)));
      console.log(`COMPLETING ${job.id} attempt ${job.attempts} pid ${process.pid}`);
      return { attempt: job.attempts, pid: process.pid };
    },
    // Finishes after payload.ms unless aborted; for the graceful-shutdown test.
    slow: async (job, ctx) => {
      console.log(`HANDLING ${job.id} attempt ${job.attempts} pid ${process.pid}`);
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, (job.payload as { ms: number }).ms);
        ctx.signal.addEventListener("abort", () => {
          clearTimeout(t);
          reject(ctx.signal.reason);
        });
      });
      return { attempt: job.attempts, pid: process.pid };
    },
  },
};

export default spec;
