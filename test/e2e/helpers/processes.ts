import { type ChildProcess, execFile, spawn } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { freePort } from "../../../src/db/embedded.js";
import { until } from "../../helpers/until.js";

export const ROOT = join(import.meta.dirname, "..", "..", "..");
export const BIN = join(ROOT, "bin", "jobline.js");
/** Generous: on a loaded machine (2 shared cores) tsx can take long to load the sources. */
export const READY_MS = 120_000;

/** An environment for a child: a value of undefined removes that variable from the inherited one. */
export type ChildEnv = Record<string, string | undefined>;
export type Exit = { code: number | null; signal: NodeJS.Signals | null };

/** process.env with LOG_LEVEL=warn and `env` over it; undefined values removed. */
function childEnv(env: ChildEnv): NodeJS.ProcessEnv {
  const all: NodeJS.ProcessEnv = { ...process.env, LOG_LEVEL: "warn", ...env };
  for (const [name, value] of Object.entries(all)) if (value === undefined) delete all[name];
  return all;
}

export interface Child {
  child: ChildProcess;
  pid: number;
  output: () => string;
  exited: Promise<Exit>;
  gone: () => boolean;
  /** Waits for `text` in the child's output. */
  waitFor: (text: string | RegExp, ms?: number) => Promise<void>;
  /** Sends `sig` by pid (to the process group for `group` children); nothing once it is gone. */
  signal: (sig: NodeJS.Signals) => void;
  /** SIGTERM, then SIGKILL after `graceMs`; resolves with the exit once the process is gone. */
  stop: (graceMs?: number) => Promise<Exit>;
  kill: () => Promise<Exit>;
}

export interface SpawnOptions {
  /** The program; node by default. */
  command?: string;
  /** Own process group, signalled as a whole (a shell and what it runs). */
  group?: boolean;
  /** Written to stdin, which is then closed. */
  input?: string;
}

const running = new Set<Child>();

/** A child process in ROOT, recorded so stopAll()/killAll() in afterAll can end it by pid even when a test failed. */
export function spawnChild(args: string[], env: ChildEnv, opts: SpawnOptions = {}): Child {
  const child = spawn(opts.command ?? process.execPath, args, {
    cwd: ROOT,
    env: childEnv(env),
    stdio: [opts.input === undefined ? "ignore" : "pipe", "pipe", "pipe"],
    detached: opts.group ?? false,
  });
  child.stdin?.end(opts.input);
  let out = "";
  const collect = (d: Buffer) => {
    out += d.toString();
  };
  child.stdout?.on("data", collect);
  child.stderr?.on("data", collect);
  const exited = new Promise<Exit>((r) =>
    child.once("exit", (code, signal) => r({ code, signal })),
  );
  const pid = child.pid!;
  const gone = () => child.exitCode !== null || child.signalCode !== null;
  const signal = (sig: NodeJS.Signals) => {
    if (gone()) return;
    try {
      process.kill(opts.group ? -pid : pid, sig);
    } catch {
      // exited in between
    }
  };
  const c: Child = {
    child,
    pid,
    output: () => out,
    exited,
    gone,
    signal,
    waitFor: (text, ms = 60_000) =>
      until(
        `"${text}" from pid ${pid}`,
        () => {
          if (typeof text === "string" ? out.includes(text) : text.test(out)) return true;
          if (gone()) throw new Error(`pid ${pid} exited before printing "${text}":\n${out}`);
          return undefined;
        },
        ms,
      ).then(() => undefined),
    stop: async (graceMs = 15_000) => {
      signal("SIGTERM");
      const t = setTimeout(() => signal("SIGKILL"), graceMs);
      const end = await exited;
      clearTimeout(t);
      running.delete(c);
      return end;
    },
    kill: async () => {
      signal("SIGKILL");
      const end = await exited;
      running.delete(c);
      return end;
    },
  };
  running.add(c);
  return c;
}

/** SIGKILL to every child still running. */
export async function killAll(): Promise<void> {
  await Promise.all([...running].map((c) => c.kill()));
}

/** SIGTERM to every child still running, SIGKILL to those not gone after `graceMs`. */
export async function stopAll(graceMs = 10_000): Promise<void> {
  await Promise.all([...running].map((c) => c.stop(graceMs)));
}

/** Waits for GET `url`/readyz to answer 200; fails at once if `child` exits first. */
export async function waitReady(url: string, child?: Child, ms = READY_MS): Promise<void> {
  await until(
    `${url}/readyz`,
    async () => {
      if (child?.gone()) throw new Error(`pid ${child.pid} exited before ${url} was ready:\n${child.output()}`);
      return (await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false)) || undefined;
    },
    ms,
    100,
  );
}

export type Jobline = Child & { url: string };

/**
 * `node bin/jobline.js <command>` on 127.0.0.1 and a free port, against `databaseUrl` (none:
 * DATABASE_URL is unset, so `start` runs its embedded PostgreSQL); waits for /readyz.
 */
export async function startJobline(
  command: "serve" | "worker" | "start",
  databaseUrl: string | undefined,
  env: ChildEnv = {},
  opts: { bin?: string; readyMs?: number } = {},
): Promise<Jobline> {
  const port = await freePort();
  // A worker serves /readyz (and /metrics) on JOBLINE_WORKER_PORT, and logs its shutdown at info.
  const own: ChildEnv = command === "worker" ? { LOG_LEVEL: "info", JOBLINE_WORKER_PORT: String(port) } : { PORT: String(port) };
  const c = spawnChild([opts.bin ?? BIN, command], { DATABASE_URL: databaseUrl, HOST: "127.0.0.1", ...own, ...env });
  const url = `http://127.0.0.1:${port}`;
  await waitReady(url, c, opts.readyMs);
  return Object.assign(c, { url });
}

const run = promisify(execFile);
export type CliResult = { code: number; stdout: string; stderr: string };

/** A one-shot `node [nodeArgs] bin/jobline.js <args>` to its exit; rejects (with code, stdout, stderr) on a non-zero exit. */
export function runCli(args: string[], env: ChildEnv = {}, opts: { bin?: string; nodeArgs?: string[]; timeout?: number } = {}) {
  return run(process.execPath, [...(opts.nodeArgs ?? []), opts.bin ?? BIN, ...args], { cwd: ROOT, env: childEnv(env), timeout: opts.timeout ?? 60_000 });
}

/** How a run ended, whether it succeeded or not. */
export const settle = (p: Promise<{ stdout: string; stderr: string }>): Promise<CliResult> =>
  p.then(
    (r) => ({ code: 0, ...r }),
    (e: CliResult) => e,
  );
