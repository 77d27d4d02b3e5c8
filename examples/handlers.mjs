// In-process handlers for `jobline start` or `jobline worker`:
//   JOBLINE_HANDLERS_MODULE=./examples/handlers.mjs npm start
// The default export is createWorker's options without `container` (see docs/workers.md).
export default {
  queues: ["thumbnails"],
  concurrency: 4,
  handlers: {
    // The return value is the job's result; a throw fails the attempt (retried while attempts remain).
    // ctx.signal aborts when the job is cancelled, its lease is lost or its timeout passes.
    resize: async (job, ctx) => {
      ctx.signal.throwIfAborted();
      return { resized: job.payload.url, width: job.payload.width ?? 128 };
    },
  },
};
