import { type ChildProcess, spawn } from "node:child_process";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { fileURLToPath } from "node:url";
import { freePort } from "../../../src/db/embedded.js";
import { until } from "../../helpers/until.js";

export const ROOT = fileURLToPath(new URL("../../../", import.meta.url));

export { until };

export interface Child {
  child: ChildProcess;
  pid: number;
  output: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Waits for `text` in the child's output. */
  waitFor: (text: string | RegExp, ms?: number) => Promise<void>;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves when the process is gone. */
  stop: (graceMs?: number) => Promise<void>;
  kill: () => Promise<void>;
}

const running = new Set<Child>();

/** A child process, recorded so killAll() in afterAll can remove it even when a test failed. */
export function spawnChild(args: string[], env: Record<string, string>, unset: string[] = []): Child {
  const all: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: "warn", ...env };
  for (const name of unset) delete all[name];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    env: all,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  child.stdout?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  child.stderr?.on("data", (d: Buffer) => {
    out += d.toString();
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const c: Child = {
    child,
    pid: child.pid!,
    output: () => out,
    exited,
    waitFor: (text, ms = 60_000) =>
      until(
        `"${text}" from pid ${child.pid}`,
        () => {
          if (typeof text === "string" ? out.includes(text) : text.test(out)) return true;
          if (gone()) throw new Error(`pid ${child.pid} exited before printing "${text}":\n${out}`);
          return undefined;
        },
        ms,
      ).then(() => undefined),
    stop: async (graceMs = 15_000) => {
      if (!gone()) {
        process.kill(c.pid, "SIGTERM");
        const t = setTimeout(() => !gone() && process.kill(c.pid, "SIGKILL"), graceMs);
        await exited;
        clearTimeout(t);
      }
      running.delete(c);
    },
    kill: async () => {
      if (!gone()) process.kill(c.pid, "SIGKILL");
      await exited;
      running.delete(c);
    },
  };
  running.add(c);
  return c;
}

export async function killAll(): Promise<void> {
  await Promise.all([...running].map((c) => c.kill()));
}

/** `node bin/jobline.js <command>` against `databaseUrl`; for serve/start it waits for /readyz. */
export async function startJobline(
  command: "serve" | "worker" | "start",
  databaseUrl: string,
  env: Record<string, string> = {},
): Promise<Child & { url: string }> {
  const port = await freePort();
  // A worker serves /readyz (and /metrics) on JOBLINE_WORKER_PORT, and logs its shutdown at info.
  const own: Record<string, string> = command === "worker" ? { LOG_LEVEL: "info", JOBLINE_WORKER_PORT: String(port) } : { PORT: String(port) };
  const c = spawnChild(["bin/jobline.js", command], { DATABASE_URL: databaseUrl, HOST: "127.0.0.1", ...own, ...env });
  const url = `http://127.0.0.1:${port}`;
  await until(
      `${command} /readyz`,
      async () => {
        if (c.child.exitCode !== null) throw new Error(`jobline ${command} exited:\n${c.output()}`);
        return (await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false)) || undefined;
      },
      60_000,
      100,
    );
  return Object.assign(c, { url });
}

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A webhook receiver on 127.0.0.1 that records every request and answers with `status(delivery)`. */
export async function startReceiver(status: (d: Delivery, n: number) => number = () => 204) {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const d = { headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() };
      deliveries.push(d);
      res.writeHead(status(d, deliveries.length)).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    deliveries,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The three Standard Webhooks headers of a recorded delivery, for Webhook#verify. */
export const webhookHeaders = (d: Delivery) => ({
  "webhook-id": String(d.headers["webhook-id"]),
  "webhook-timestamp": String(d.headers["webhook-timestamp"]),
  "webhook-signature": String(d.headers["webhook-signature"]),
});

export async function api(base: string, key: string, method: string, path: string, body?: unknown) {
  const r = await fetch(base + path, {
    method,
    headers: { authorization: key.startsWith("Bearer ") ? key : `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  return { status: r.status, headers: r.headers, body: json as any };
}
