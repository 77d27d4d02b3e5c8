export {
  type Batch,
  type ClaimedJob,
  type components,
  createJoblineClient,
  isProblem,
  type Job,
  JoblineApiError,
  type JoblineClient,
  type JoblineClientOptions,
  type JobStatus,
  type JobSubmit,
  type Problem,
  type paths,
  unwrap,
} from "./client.js";
export {
  JobCancelRequestedError,
  type JobContext,
  type JobHandler,
  LeaseLostError,
  NonRetryableError,
  type RunHttpWorkerOptions,
  runHttpWorker,
  type WorkerStats,
} from "./worker.js";
export { type Queue, type QueueSettings, type QueueSettingsPut, queueControls } from "./queues.js";
