import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { isAlive } from "../../../src/db/dataDir.js";

/** A killed `jobline start` can leave its embedded PostgreSQL behind: stop that one by the pid in its data directory. */
export function stopLeftoverPostgres(dataDir: string) {
  const pidFile = join(dataDir, "pgdata", "postmaster.pid");
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, "utf8").split("\n")[0]);
  if (isAlive(pid)) process.kill(pid, "SIGQUIT");
}
