// `jobline schedules list|create|pause|resume|delete`: takes options already parsed (by
// commander, which also camel-cases --catch-up) and a client.
import { call, remoteFromEnv, report, UsageError } from "./cliRemote.js";

export const SCHEDULES_HELP = `jobline schedules list [--limit N] [--cursor C]
jobline schedules create --name N --cron "C" --queue Q --kind K [--timezone TZ] [--payload JSON]
                         [--overlap allow|skip] [--catch-up none|latest] [--paused]
jobline schedules pause ID | resume ID | delete ID
  Manage cron schedules on the server at JOBLINE_URL (JOBLINE_API_KEY, a client key); prints JSON.`;

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


function payloadOf(text: string | undefined): unknown {
  if (text === undefined) return {};
  try {
    return JSON.parse(text);
  } catch {
    throw new UsageError("--payload must be JSON");
  }
}

/** Returns the exit code: 0, or 1 for an HTTP error (its problem on stderr); usage errors throw. */
export async function schedulesCommand(action: string | undefined, id: string | undefined, o: ScheduleCliOptions) {
  const r = remoteFromEnv();
  const one = `/v1/schedules/${encodeURIComponent(id ?? "")}`;
  const catchUp = o["catch-up"] ?? o.catchUp;
  switch (action) {
    case "list": {
      const q = new URLSearchParams({ ...(o.limit ? { limit: o.limit } : {}), ...(o.cursor ? { cursor: o.cursor } : {}) }).toString();
      return report(await call(r, "GET", `/v1/schedules${q ? `?${q}` : ""}`));
    }
    case "create": {
      if (!o.name || !o.cron || !o.queue || !o.kind) throw new UsageError(SCHEDULES_HELP);
      const body = {
        name: o.name,
        cron: o.cron,
        job: { queue: o.queue, kind: o.kind, payload: payloadOf(o.payload) },
        ...(o.timezone ? { timezone: o.timezone } : {}),
        ...(o.overlap ? { overlap: o.overlap } : {}),
        ...(catchUp ? { catchUp } : {}),
        ...(o.paused ? { paused: true } : {}),
      };
      return report(await call(r, "POST", "/v1/schedules", body));
    }
    case "pause":
    case "resume":
      if (!id) throw new UsageError(SCHEDULES_HELP);
      return report(await call(r, "PATCH", one, { paused: action === "pause" }));
    case "delete": {
      if (!id) throw new UsageError(SCHEDULES_HELP);
      const res = await call(r, "DELETE", one);
      return res.ok ? 0 : report(res);
    }
    default:
      throw new UsageError(SCHEDULES_HELP);
  }
}
