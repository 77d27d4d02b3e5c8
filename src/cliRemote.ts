// CLI commands that talk to a running server over HTTP, through the generated SDK client.
import { parseArgs } from "node:util";
import { createJoblineClient } from "../clients/typescript/src/client.js";

export const REMOTE_HELP: Record<string, string> = {
  submit: `jobline submit --queue Q --kind K [--payload JSON] [--priority N] [--group-key G] [--idempotency-key K]
  Submit a job to the server at JOBLINE_URL with the key in JOBLINE_API_KEY; prints the job as JSON.`,
  jobs: `jobline jobs get ID
  Print one job as JSON (JOBLINE_URL, JOBLINE_API_KEY).`,
  schedules: `jobline schedules list [--limit N] [--cursor C]
jobline schedules create --name N --cron "C" --queue Q --kind K [--timezone TZ] [--payload JSON]
                         [--overlap allow|skip] [--catch-up none|latest] [--paused]
jobline schedules pause ID | resume ID | delete ID
  Manage cron schedules on the server at JOBLINE_URL (JOBLINE_API_KEY, a client key); prints JSON.`,
  queues: `jobline queues
  Print per-queue counts by status and the oldest queued age (JOBLINE_URL, JOBLINE_API_KEY).`,
};

function parsePayload(text: string | undefined): unknown {
  if (text === undefined) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError("--payload must be JSON");
  }
}

async function schedules(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      name: { type: "string" },
      cron: { type: "string" },
      timezone: { type: "string" },
      queue: { type: "string" },
      kind: { type: "string" },
      payload: { type: "string" },
      overlap: { type: "string" },
      "catch-up": { type: "string" },
      paused: { type: "boolean" },
      limit: { type: "string" },
      cursor: { type: "string" },
    },
  });
  const [action, id] = positionals;
  const api = client();
  const path = { params: { path: { id: id ?? "" } } };
  switch (action) {
    case "list":
      return report(
        await api.GET("/v1/schedules", {
          params: { query: { ...(values.limit ? { limit: Number(values.limit) } : {}), ...(values.cursor ? { cursor: values.cursor } : {}) } },
        }),
      );
    case "create": {
      if (!values.name || !values.cron || !values.queue || !values.kind) throw new UsageError(REMOTE_HELP.schedules!);
      const body = {
        name: values.name,
        cron: values.cron,
        job: { queue: values.queue, kind: values.kind, payload: parsePayload(values.payload) },
        ...(values.timezone ? { timezone: values.timezone } : {}),
        ...(values.overlap ? { overlap: values.overlap as "allow" | "skip" } : {}),
        ...(values["catch-up"] ? { catchUp: values["catch-up"] as "none" | "latest" } : {}),
        ...(values.paused ? { paused: true } : {}),
      };
      return report(await api.POST("/v1/schedules", { body }));
    }
    case "pause":
    case "resume":
      if (!id) throw new UsageError(REMOTE_HELP.schedules!);
      return report(await api.PATCH("/v1/schedules/{id}", { ...path, body: { paused: action === "pause" } }));
    case "delete": {
      if (!id) throw new UsageError(REMOTE_HELP.schedules!);
      const r = await api.DELETE("/v1/schedules/{id}", path);
      return r.response.ok ? 0 : report(r);
    }
    default:
      throw new UsageError(REMOTE_HELP.schedules!);
  }
}

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
      const payload = parsePayload(values.payload);
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
      return report(await client().GET("/v1/queues"));
    case "schedules":
      return schedules(args);
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}
