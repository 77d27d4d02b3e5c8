// CLI commands that talk to a running server over HTTP, through the generated SDK client.
import { parseArgs } from "node:util";
import { createJoblineClient } from "../clients/typescript/src/client.js";

export const REMOTE_HELP: Record<string, string> = {
  submit: `jobline submit --queue Q --kind K [--payload JSON] [--priority N] [--group-key G] [--idempotency-key K]
  Submit a job to the server at JOBLINE_URL with the key in JOBLINE_API_KEY; prints the job as JSON.`,
  jobs: `jobline jobs get ID
  Print one job as JSON (JOBLINE_URL, JOBLINE_API_KEY).`,
  queues: `jobline queues
  Print per-queue counts by status, the oldest queued age and why jobs wait (JOBLINE_URL, JOBLINE_API_KEY).
jobline queues get|pause|resume Q [--tenant T]
jobline queues set Q [--concurrency N] [--group-concurrency N] [--rate-limit LIMIT/SECONDS] [--default-timeout S] [--paused] [--tenant T]
  Queue controls (admin key; --tenant with a platform key). set replaces every setting: one not given is no limit.`,
};

function client() {
  const baseUrl = process.env.JOBLINE_URL ?? "http://127.0.0.1:8080";
  const apiKey = process.env.JOBLINE_API_KEY;
  if (!apiKey) throw new UsageError("set JOBLINE_API_KEY (and JOBLINE_URL, default http://127.0.0.1:8080)");
  return createJoblineClient({ baseUrl, apiKey });
}

export class UsageError extends Error {}

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

/** Prints the body on success; returns the exit code (1 for an HTTP error, whose problem goes to stderr). */
function report(r: { data?: unknown; error?: unknown; response: Response }): number {
  if (r.response.ok) {
    print(r.data);
    return 0;
  }
  process.stderr.write(`${r.response.status}: ${JSON.stringify(r.error)}\n`);
  return 1;
}

export async function runRemote(command: string, args: string[]): Promise<number> {
  switch (command) {
    case "submit": {
      const { values } = parseArgs({
        args,
        options: {
          queue: { type: "string" },
          kind: { type: "string" },
          payload: { type: "string" },
          priority: { type: "string" },
          "group-key": { type: "string" },
          "idempotency-key": { type: "string" },
        },
      });
      if (!values.queue || !values.kind) throw new UsageError(REMOTE_HELP.submit!);
      let payload: unknown = {};
      if (values.payload !== undefined) {
        try {
          payload = JSON.parse(values.payload);
        } catch {
          throw new UsageError("--payload must be JSON");
        }
      }
      const r = await client().POST("/v1/jobs", {
        body: {
          queue: values.queue,
          kind: values.kind,
          payload,
          ...(values.priority === undefined ? {} : { priority: Number(values.priority) }),
          ...(values["group-key"] === undefined ? {} : { groupKey: values["group-key"] }),
        },
        params: { header: values["idempotency-key"] ? { "idempotency-key": values["idempotency-key"] } : {} },
      });
      return report(r);
    }
    case "jobs": {
      const { positionals } = parseArgs({ args, allowPositionals: true });
      if (positionals[0] !== "get" || !positionals[1]) throw new UsageError(REMOTE_HELP.jobs!);
      return report(await client().GET("/v1/jobs/{id}", { params: { path: { id: positionals[1] } } }));
    }
    case "queues":
      return args.length === 0 ? report(await client().GET("/v1/queues")) : queueControl(args);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}

const positive = (name: string, v: string | undefined) => {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new UsageError(`--${name} must be a whole number >= 1`);
  return n;
};

/** `queues set`'s options as the PUT body: every setting not given is no limit. */
export function queueSettingsFromArgs(values: Record<string, string | boolean | undefined>) {
  let rateLimit: { limit: number; periodSeconds: number } | undefined;
  if (typeof values["rate-limit"] === "string") {
    const m = /^(\d+)\/(\d+)$/.exec(values["rate-limit"]);
    if (!m) throw new UsageError("--rate-limit is LIMIT/SECONDS, e.g. 100/60");
    rateLimit = { limit: positive("rate-limit", m[1])!, periodSeconds: positive("rate-limit", m[2])! };
  }
  const num = (k: string) => positive(k, typeof values[k] === "string" ? values[k] : undefined);
  return {
    paused: values.paused === true,
    ...(num("concurrency") === undefined ? {} : { concurrency: num("concurrency") }),
    ...(num("group-concurrency") === undefined ? {} : { groupConcurrency: num("group-concurrency") }),
    ...(rateLimit ? { rateLimit } : {}),
    ...(num("default-timeout") === undefined ? {} : { defaultTimeoutSeconds: num("default-timeout") }),
  };
}

async function queueControl(args: string[]): Promise<number> {
  const { positionals, values } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      tenant: { type: "string" },
      concurrency: { type: "string" },
      "group-concurrency": { type: "string" },
      "rate-limit": { type: "string" },
      "default-timeout": { type: "string" },
      paused: { type: "boolean" },
    },
  });
  const [action, queue] = positionals;
  if (!queue || !["get", "set", "pause", "resume"].includes(action ?? "")) throw new UsageError(REMOTE_HELP.queues!);
  const at = { params: { path: { queue }, query: values.tenant === undefined ? {} : { tenant: values.tenant } } };
  const c = client();
  if (action === "get") return report(await c.GET("/v1/queues/{queue}", at));
  if (action === "pause") return report(await c.POST("/v1/queues/{queue}/pause", at));
  if (action === "resume") return report(await c.POST("/v1/queues/{queue}/resume", at));
  return report(await c.PUT("/v1/queues/{queue}", { ...at, body: queueSettingsFromArgs(values) }));
}
