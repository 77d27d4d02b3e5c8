import { beforeAll } from "vitest";
import { type ChildEnv, runCli } from "./processes.js";
import { useJobline } from "./useJobline.js";
import { api as call } from "./util.js";

/**
 * A `jobline serve` process on a fresh database for a test file, with an admin key; `cli` runs
 * the CLI against it (JOBLINE_URL and JOBLINE_API_KEY set), `api` calls its HTTP API as the
 * admin. Stopped by pid after the file.
 */
export function useCliServer(label: string) {
  const t = useJobline(label);
  const s = { admin: t.admin, env: {} as ChildEnv, databaseUrl: "" };

  beforeAll(async () => {
    const server = await t.start("serve");
    s.databaseUrl = t.databaseUrl;
    s.env = { JOBLINE_URL: server.url, JOBLINE_API_KEY: s.admin };
  }, 180_000);

  const cli = (args: string[], extra: ChildEnv = {}, opts: { nodeArgs?: string[] } = {}) => runCli(args, { ...s.env, ...extra }, opts);
  const api = (method: string, path: string, body?: unknown) => call(String(s.env.JOBLINE_URL), s.admin, method, path, body);
  return Object.assign(s, { cli, api });
}
