// CLI commands that talk to a running server over HTTP, through the generated SDK client.
import { parseArgs } from "node:util";
import { createJoblineClient } from "../clients/typescript/src/client.js";
import { SCHEDULE_OPTIONS, SCHEDULES_HELP, schedulesCommand } from "./cliSchedules.js";

export const REMOTE_HELP: Record<string, string> = {
  submit: `jobline submit --queue Q --kind K [--payload JSON] [--priority N] [--group-key G] [--idempotency-key K]
  Submit a job to the server at JOBLINE_URL with the key in JOBLINE_API_KEY; prints the job as JSON.`,
  jobs: `jobline jobs get ID
  Print one job as JSON (JOBLINE_URL, JOBLINE_API_KEY).`,
  schedules: SCHEDULES_HELP,
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
    case "schedules": {
      const { values, positionals } = parseArgs({ args, allowPositionals: true, options: SCHEDULE_OPTIONS });
      return schedulesCommand(positionals[0], positionals[1], values, client());
    }
    default:
      throw new UsageError(`unknown command ${command}`);
  }
}
