import { z } from "zod";

const bool = z
  .enum(["true", "false", "1", "0"])
  .transform((v) => v === "true" || v === "1");

const ConfigSchema = z.object({
  DATABASE_URL: z.string().url().optional(),
  JOBLINE_DATA_DIR: z.string().default("./.jobline"),
  HOST: z.string().default("127.0.0.1"),
  PORT: z.coerce.number().int().min(0).max(65535).default(8080),
  LOG_LEVEL: z.enum(["fatal", "error", "warn", "info", "debug", "trace", "silent"]).default("info"),
  /** auto: pretty on a terminal, JSON lines otherwise. */
  LOG_FORMAT: z.enum(["auto", "json", "pretty"]).default("auto"),
  /** `jobline worker` serves /metrics, /healthz and /readyz on this port (unset: no HTTP; 0: any free port). */
  JOBLINE_WORKER_PORT: z.coerce.number().int().min(0).max(65535).optional(),
  JOBLINE_BOOTSTRAP_KEY: z.string().min(16).optional(),
  JOBLINE_REAPER_INTERVAL_MS: z.coerce.number().int().min(50).default(5000),
  JOBLINE_WEBHOOK_ALLOW_HOSTS: z.string().default(""),
  JOBLINE_WEBHOOK_MAX_ATTEMPTS: z.coerce.number().int().min(1).max(100).default(8),
  JOBLINE_WEBHOOK_RETRY_BASE_MS: z.coerce.number().int().min(1).default(1000),
  JOBLINE_WEBHOOK_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  JOBLINE_WEBHOOK_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(16),
  JOBLINE_WEBHOOK_POLL_MS: z.coerce.number().int().min(10).default(500),
  JOBLINE_RETENTION_DAYS: z.coerce.number().min(0).default(7),
  JOBLINE_RETENTION_INTERVAL_MS: z.coerce.number().int().min(100).default(60_000),
  JOBLINE_BACKOFF_BASE_MS: z.coerce.number().int().min(0).default(1000),
  JOBLINE_BACKOFF_MAX_MS: z.coerce.number().int().min(0).default(3_600_000),
  JOBLINE_DB_POOL_MAX: z.coerce.number().int().min(1).max(200).default(20),
  // While PostgreSQL cannot be reached: longest wait for a connection before a 503.
  JOBLINE_DB_ACQUIRE_TIMEOUT_MS: z.coerce.number().int().min(50).max(60_000).default(2000),
  JOBLINE_AUTH_CACHE_MS: z.coerce.number().int().min(0).default(5000),
  JOBLINE_SHUTDOWN_TIMEOUT_MS: z.coerce.number().int().min(0).default(30_000),
  // Client deadlines. The request ones cover receiving the request only, never the answer, so a
  // long poll's wait (up to 30 s) is the server's; the idle one must outlast that wait.
  JOBLINE_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  JOBLINE_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(60_000),
  JOBLINE_KEEP_ALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  JOBLINE_IDLE_TIMEOUT_MS: z.coerce.number().int().min(35_000).default(65_000),
  JOBLINE_MAX_CONNECTIONS: z.coerce.number().int().min(1).default(1000),
  // A schedule's tick later than this was missed (catchUp decides); the scheduler's longest sleep.
  JOBLINE_SCHEDULE_GRACE_MS: z.coerce.number().int().min(0).default(10_000),
  // GET /v1/jobs/{id}?waitMs=: how often a process checks, in one query, the jobs its requests
  // wait on, for finalisations no NOTIFY announced (a batch cancel, a lost NOTIFY).
  JOBLINE_WAIT_SWEEP_MS: z.coerce.number().int().min(100).default(5000),
  JOBLINE_SCHEDULER_MAX_IDLE_MS: z.coerce.number().int().min(10).default(500),
  JOBLINE_WORKER_DISABLE_HANDLERS: bool.default(false),
  // /metrics: bearer token (unset: open), tenant label (false: gauges and counters aggregate
  // across tenants), how often the counting gauges may query the database, and how long
  // scrapes share one rendering.
  JOBLINE_METRICS_TOKEN: z.string().min(16).optional(),
  JOBLINE_METRICS_TENANT_LABEL: bool.default(true),
  JOBLINE_METRICS_SAMPLE_MS: z.coerce.number().int().min(100).default(10_000),
  JOBLINE_METRICS_CACHE_MS: z.coerce.number().int().min(0).default(1000),
  // A module (path or specifier) whose default export is createWorker's options minus `container`.
  JOBLINE_HANDLERS_MODULE: z.string().min(1).optional(),
});

export type Config = z.infer<typeof ConfigSchema>;

const checked = ConfigSchema.refine((c) => c.JOBLINE_HEADERS_TIMEOUT_MS <= c.JOBLINE_REQUEST_TIMEOUT_MS, {
  message: "must not exceed JOBLINE_REQUEST_TIMEOUT_MS",
  path: ["JOBLINE_HEADERS_TIMEOUT_MS"],
});

/** Validated once at start; a bad setting stops the process with a readable message. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = checked.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join(".")}: ${i.message}`);
    throw new Error(`invalid configuration:\n${lines.join("\n")}`);
  }
  return parsed.data;
}

export function testConfig(overrides: Partial<Config> = {}): Config {
  const level = (process.env.TEST_LOG_LEVEL ?? "silent") as Config["LOG_LEVEL"];
  // Tests read counters right after acting: no shared rendering unless a test asks for it.
  return { ...loadConfig({}), LOG_LEVEL: level, JOBLINE_METRICS_CACHE_MS: 0, ...overrides };
}
