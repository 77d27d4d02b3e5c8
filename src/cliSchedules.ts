// `jobline schedules list|create|pause|resume|delete`: takes options already parsed (by
// node:util parseArgs here; commander hands over the same names) and a client.
import type { JoblineClient } from "../clients/typescript/src/client.js";

export const SCHEDULES_HELP = `jobline schedules list [--limit N] [--cursor C]
jobline schedules create --name N --cron "C" --queue Q --kind K [--timezone TZ] [--payload JSON]
                         [--overlap allow|skip] [--catch-up none|latest] [--paused]
jobline schedules pause ID | resume ID | delete ID
  Manage cron schedules on the server at JOBLINE_URL (JOBLINE_API_KEY, a client key); prints JSON.`;

export const SCHEDULE_OPTIONS = {
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
} as const;

export interface ScheduleCliOptions {
  name?: string | undefined;
  cron?: string | undefined;
  timezone?: string | undefined;
  queue?: string | undefined;
  kind?: string | undefined;
  payload?: string | undefined;
  overlap?: string | undefined;
  "catch-up"?: string | undefined;
  /** commander's camel-cased spelling of --catch-up */
  catchUp?: string | undefined;
  paused?: boolean | undefined;
  limit?: string | undefined;
  cursor?: string | undefined;
}

export class ScheduleUsageError extends Error {}

const print = (v: unknown) => process.stdout.write(`${JSON.stringify(v, null, 2)}\n`);

function report(r: { data?: unknown; error?: unknown; response: Response }, quiet = false): number {
  if (r.response.ok) {
    if (!quiet) print(r.data);
    return 0;
  }
  process.stderr.write(`${r.response.status}: ${JSON.stringify(r.error)}\n`);
  return 1;
}

function payloadOf(text: string | undefined): unknown {
  if (text === undefined) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new ScheduleUsageError("--payload must be JSON");
  }
}

/** Returns the exit code: 0, or 1 for an HTTP error (its problem on stderr); usage errors throw. */
export async function schedulesCommand(action: string | undefined, id: string | undefined, o: ScheduleCliOptions, api: JoblineClient) {
  const path = { params: { path: { id: id ?? "" } } };
  const catchUp = o["catch-up"] ?? o.catchUp;
  switch (action) {
    case "list":
      return report(
        await api.GET("/v1/schedules", {
          params: { query: { ...(o.limit ? { limit: Number(o.limit) } : {}), ...(o.cursor ? { cursor: o.cursor } : {}) } },
        }),
      );
    case "create": {
      if (!o.name || !o.cron || !o.queue || !o.kind) throw new ScheduleUsageError(SCHEDULES_HELP);
      const body = {
        name: o.name,
        cron: o.cron,
        job: { queue: o.queue, kind: o.kind, payload: payloadOf(o.payload) },
        ...(o.timezone ? { timezone: o.timezone } : {}),
        ...(o.overlap ? { overlap: o.overlap as "allow" | "skip" } : {}),
        ...(catchUp ? { catchUp: catchUp as "none" | "latest" } : {}),
        ...(o.paused ? { paused: true } : {}),
      };
      return report(await api.POST("/v1/schedules", { body }));
    }
    case "pause":
    case "resume":
      if (!id) throw new ScheduleUsageError(SCHEDULES_HELP);
      return report(await api.PATCH("/v1/schedules/{id}", { ...path, body: { paused: action === "pause" } }));
    case "delete":
      if (!id) throw new ScheduleUsageError(SCHEDULES_HELP);
      return report(await api.DELETE("/v1/schedules/{id}", path), true);
    default:
      throw new ScheduleUsageError(SCHEDULES_HELP);
  }
}
