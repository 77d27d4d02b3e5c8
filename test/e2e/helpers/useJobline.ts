import { randomBytes } from "node:crypto";
import postgres from "postgres";
import { afterAll, beforeAll } from "vitest";
import { createTestDatabase } from "../../helpers/db.js";
import { type OwnPostgres, startOwnPostgres } from "./ownPostgres.js";
import { type ChildEnv, type Jobline, startJobline, stopAll } from "./processes.js";
import { type Receiver, startReceiver } from "./receiver.js";
import { api } from "./util.js";

export interface JoblineFixture {
  /** JOBLINE_BOOTSTRAP_KEY of every process `start` runs: a platform admin key. */
  admin: string;
  databaseUrl: string;
  /** A small pool on the file's database, for reading rows. */
  sql: postgres.Sql;
  /** With `ownPostgres` only: the file's own server, to stop and start. */
  pg: OwnPostgres;
  start: (command: "serve" | "worker" | "start", env?: ChildEnv, opts?: { bin?: string; readyMs?: number }) => Promise<Jobline>;
  /** A new API key of `tenant` with `role`, made with the admin key through `proc`. */
  key: (proc: { url: string }, tenant: string, role: "client" | "worker" | "admin") => Promise<string>;
  /** A webhook receiver on 127.0.0.1, closed after the file. */
  receiver: () => Promise<Receiver>;
}

/**
 * The set-up of a test file that runs real jobline processes: a fresh database (with
 * `ownPostgres`, a PostgreSQL of the file's own, which its tests may stop), a bootstrap admin
 * key, a pool, receivers. After the file: every process stopped by pid (SIGTERM, SIGKILL after
 * `stopGraceMs`), receivers closed, the database dropped.
 */
export function useJobline(label: string, opts: { ownPostgres?: boolean; stopGraceMs?: number } = {}): JoblineFixture {
  const receivers: Receiver[] = [];
  let drop: (() => Promise<void>) | undefined;
  const t: JoblineFixture = {
    admin: `jl_test_${randomBytes(16).toString("hex")}`,
    databaseUrl: "",
    sql: undefined as unknown as postgres.Sql,
    pg: undefined as unknown as OwnPostgres,
    start: (command, env = {}, o = {}) => startJobline(command, t.databaseUrl, { JOBLINE_BOOTSTRAP_KEY: t.admin, ...env }, o),
    key: async (proc, tenant, role) => {
      const r = await api(proc.url, t.admin, "POST", "/v1/api-keys", { tenant, roles: [role] });
      if (r.status !== 201) throw new Error(`key for ${tenant}: ${r.status} ${JSON.stringify(r.body)}`);
      return r.body.key as string;
    },
    receiver: async () => {
      const r = await startReceiver();
      receivers.push(r);
      return r;
    },
  };
  beforeAll(async () => {
    if (opts.ownPostgres) {
      t.pg = await startOwnPostgres(`jobline-${label}-pg-`);
      t.databaseUrl = t.pg.url;
      drop = t.pg.destroy;
    } else {
      const db = await createTestDatabase(label);
      t.databaseUrl = db.url;
      drop = db.drop;
    }
    t.sql = postgres(t.databaseUrl, { max: 2, onnotice: () => {} });
  }, 120_000);
  afterAll(async () => {
    try {
      await stopAll(opts.stopGraceMs);
    } finally {
      await Promise.all(receivers.map((r) => r.close()));
      await t.sql?.end({ timeout: 5 });
      await drop?.();
    }
  }, 60_000);
  return t;
}
