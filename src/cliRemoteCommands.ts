// `jobline submit | jobs | schedules | queues`: commands that talk to a running server.
// Registered with commander only; each action imports cliRemote.ts and the like when it runs.
import { type Command, Option } from "commander";
import type { JobFilterOptions, SubmitOptions } from "./cliRemote.js";

const remote = "Talks to the server at JOBLINE_URL (default http://127.0.0.1:8080) with the key in JOBLINE_API_KEY.";

// Each action loads its client module only when it runs; its exit code becomes the process's.
async function submitCommand(o: SubmitOptions): Promise<void> {
  const { submit } = await import("./cliRemote.js");
  process.exitCode = await submit(o);
}

async function getJobCommand(id: string): Promise<void> {
  const { getJob } = await import("./cliRemote.js");
  process.exitCode = await getJob(id);
}

async function listJobsCommand(o: JobFilterOptions & { limit?: string; cursor?: string }): Promise<void> {
  const { listJobs } = await import("./cliRemote.js");
  process.exitCode = await listJobs(o);
}

async function jobActionCommand(action: "retry" | "delete", id: string | undefined, o: JobFilterOptions & { limit?: string }): Promise<void> {
  const { jobAction } = await import("./cliRemote.js");
  process.exitCode = await jobAction(action, id, o);
}

async function schedulesAction(action: string, id: string | undefined, o: Record<string, unknown>): Promise<void> {
  const { schedulesCommand } = await import("./cliSchedules.js");
  process.exitCode = await schedulesCommand(action, id, o);
}

async function queuesAction(action: string | undefined, queue: string | undefined, o: Record<string, unknown>): Promise<void> {
  const { queuesCommand } = await import("./cliQueues.js");
  process.exitCode = await queuesCommand(action, queue, o);
}

export function addSubmitCommand(p: Command): void {
  p.command("submit")
    .summary("submit a job to a running server")
    .description(`Submit a job and print it as JSON. Sends an Idempotency-Key (one per submit, reused on its retries). ${remote}`)
    .requiredOption("--queue <queue>")
    .requiredOption("--kind <kind>")
    .option("--payload <json>", "the job's payload, as JSON")
    .option("--priority <n>")
    .option("--group-key <key>")
    .option("--idempotency-key <key>", "default: a new random key")
    .option("--depends-on <ids>", "comma-separated job ids this job waits for (dependsOn.jobs)")
    .option("--depends-on-batches <ids>", "comma-separated batch ids this job waits for (dependsOn.batches)")
    .addOption(new Option("--retries <n>", "resends after a network error, 429 or 5xx (same key)").default("3"))
    .action(submitCommand);
}

/** The filters of `jobs list` and of the bulk `jobs retry|delete`. */
const filters = (c: Command) =>
  c
    .option("--queue <queue>")
    .option("--status <status>", "queued | running | succeeded | failed | cancelled")
    .option("--kind <kind>")
    .option("--tag <tag>")
    .option("--created-after <iso>")
    .option("--created-before <iso>")
    .option("--limit <n>");

export function addJobsCommands(p: Command): void {
  const jobs = p.command("jobs").summary("read, list, retry and delete jobs on a running server").description(`Read and act on jobs. ${remote}`);
  jobs
    .command("get <id>")
    .description("print one job as JSON")
    .action(getJobCommand);
  filters(jobs.command("list").description("print one page of jobs, newest first, as { items, nextCursor }"))
    .option("--cursor <cursor>", "the nextCursor of the previous page")
    .action(listJobsCommand);
  for (const [action, what] of [
    ["retry", "retry a failed or cancelled job (→ queued) and print it; without an id, every job the filters match (bulk)"],
    ["delete", "delete a finished job; without an id, every finished job the filters match (bulk)"],
  ] as const)
    filters(jobs.command(`${action} [id]`).description(what)).action((id: string | undefined, o: JobFilterOptions & { limit?: string }) =>
      jobActionCommand(action, id, o),
    );
}

export function addSchedulesCommand(p: Command): void {
  p.command("schedules <action> [id]")
    .summary("manage cron schedules on a running server")
    .description(`list | create | pause ID | resume ID | delete ID; prints JSON. ${remote}`)
    .option("--name <name>")
    .option("--cron <expr>", "5 fields, or 6 with seconds")
    .option("--timezone <tz>", "IANA time zone (default UTC)")
    .option("--queue <queue>")
    .option("--kind <kind>")
    .option("--payload <json>")
    .option("--overlap <mode>", "allow | skip")
    .option("--catch-up <mode>", "none | latest")
    .option("--paused")
    .option("--limit <n>")
    .option("--cursor <cursor>")
    .action(schedulesAction);
}

export function addQueuesCommand(p: Command): void {
  p.command("queues [action] [queue]")
    .summary("print queue depths, or read and change a queue's controls, on a running server")
    .description(
      `No action: per-queue counts by status, the oldest queued age and why jobs wait. get | set | pause | resume Q: ` +
        `queue controls (admin key; --tenant with a platform key); set replaces every setting, one not given is no limit. ${remote}`,
    )
    .option("--tenant <tenant>", "the queue's tenant (platform key)")
    .option("--concurrency <n>", "most running jobs in the queue")
    .option("--group-concurrency <n>", "most running jobs per group key")
    .option("--rate-limit <limit/seconds>", "most starts per period, e.g. 100/60")
    .option("--default-timeout <seconds>")
    .option("--paused", "set: the queue starts paused")
    .action(queuesAction);
}
