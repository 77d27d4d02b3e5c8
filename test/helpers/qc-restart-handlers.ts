import type { HandlerSpec } from "../../src/server.js";

// Handlers for `jobline worker` in queue-controls-pg-restart: random short work on the capped
// queues, so the worker process claims beside the test's HTTP pollers through the restart.
const spec: HandlerSpec = {
  queues: ["rc", "rg"],
  concurrency: 4,
  leaseSeconds: 5,
  waitMs: 500,
  handlers: {
    work: async () => {
      await new Promise((r) => setTimeout(r, 2 + Math.random() * 20));
      return { pid: process.pid };
    },
  },
};

export default spec;
