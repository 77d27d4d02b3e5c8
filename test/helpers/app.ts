import type { Api } from "../../src/http/types.js";
import postgres from "postgres";
import supertest from "supertest";
import { afterAll, beforeAll, expect } from "vitest";
import { type Config, testConfig } from "../../src/config.js";
import { type Container, createContainer } from "../../src/container.js";
import { buildApp } from "../../src/http/app.js";
import type { Role } from "../../src/services/auth.js";
import { createTestDatabase } from "./db.js";

export interface TestEnv {
  url: string;
  c: Container;
  app: Api;
  http: () => ReturnType<typeof supertest>;
  /** Creates a key and returns the bearer header value. */
  key: (tenant: string, ...roles: Role[]) => Promise<string>;
  admin: string;
  close: () => Promise<void>;
}

/** A real app on a fresh database: the unit under test is everything but the network. */
export async function createTestEnv(label: string, overrides: Partial<Config> = {}): Promise<TestEnv> {
  const db = await createTestDatabase(label);
  const config = testConfig({ JOBLINE_DB_POOL_MAX: 40, JOBLINE_BACKOFF_BASE_MS: 1000, ...overrides });
  const c = createContainer(config, db.url);
  await c.notifier.start();
  const app = await buildApp(c);
  await app.ready();
  const key = async (tenant: string, ...roles: Role[]) => {
    const k = await c.services.auth.createKey({ tenant, roles });
    return `Bearer ${k!.key}`;
  };
  const admin = await key("*", "admin");
  return {
    url: db.url,
    c,
    app,
    http: () => supertest(app.server),
    key,
    admin,
    close: async () => {
      await app.close();
      await c.close();
      await db.drop();
    },
  };
}

/**
 * The per-file set-up: a fresh database and app before the file's tests, closed after, with a
 * client and a worker key of tenant acme. Read the fields inside tests and hooks (they are set
 * in beforeAll). A file's own beforeAll runs after this one, its own afterAll before the close.
 */
export function useTestEnv(label: string, overrides: Partial<Config> = {}, opts: { listen?: boolean } = {}) {
  const t = {} as { env: TestEnv; client: string; worker: string; base: string; port: number };
  beforeAll(async () => {
    t.env = await createTestEnv(label, overrides);
    // Real sockets, for tests whose requests must be concurrent all the way to PostgreSQL.
    if (opts.listen) {
      t.base = await t.env.app.listen({ port: 0, host: "127.0.0.1" });
      t.port = Number(new URL(t.base).port);
    }
    t.client = await t.env.key("acme", "client");
    t.worker = await t.env.key("acme", "worker");
  });
  afterAll(async () => {
    // Sockets a test left open (keep-alive, raw ones) would hold the server's close.
    if (opts.listen) t.env?.app.server.closeAllConnections();
    await t.env?.close();
  });
  return t;
}

/** For files whose tests need apps of their own (other settings): opens one, closed after the file's tests. */
export function useTestEnvs() {
  const envs: TestEnv[] = [];
  afterAll(async () => {
    for (const e of envs) await e.close();
  });
  return async (label: string, overrides: Partial<Config> = {}) => {
    const env = await createTestEnv(label, overrides);
    envs.push(env);
    return env;
  };
}

/** Keys made before the file's tests: `{ name: [tenant, ...roles] }` → `{ name: bearer header }`. */
export function useKeys<K extends string>(t: { env: TestEnv }, spec: Record<K, [string, ...Role[]]>) {
  const keys = {} as Record<K, string>;
  beforeAll(async () => {
    for (const [name, [tenant, ...roles]] of Object.entries(spec) as Array<[K, [string, ...Role[]]]>) keys[name] = await t.env.key(tenant, ...roles);
  });
  return keys;
}

/**
 * Connection pools of their own on the file's database (other sessions, as other processes
 * have), ended after the file's tests and before its database is dropped.
 */
export function usePools(t: { env: TestEnv }) {
  const pools: postgres.Sql[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.end({ timeout: 5 })));
  });
  return (options: postgres.Options<Record<string, postgres.PostgresType>> = {}): postgres.Sql => {
    const p = postgres(t.env.url, { onnotice: () => {}, ...options });
    pools.push(p);
    return p;
  };
}

/** Submits through the job service (no HTTP) as `tenant`; throws on a refusal. */
export async function submitDirect(env: TestEnv, tenant: string, input: Parameters<Container["services"]["jobs"]["submit"]>[1]) {
  const r = await env.c.services.jobs.submit(tenant, input);
  if (!r.ok) throw new Error(r.error);
  return r.value;
}

/** POST /v1/jobs with `key`, expecting 201; the job as created. */
export async function submitJob<T = { id: string; version: number }>(env: TestEnv, key: string, body: object): Promise<T> {
  const r = await env.http().post("/v1/jobs").set("authorization", key).send(body);
  expect(r.status, JSON.stringify(r.body)).toBe(201);
  return r.body as T;
}

/** A job as process-next leases it (the fields the tests read; the wire has more). */
export type LeasedJob = { id: string; leaseToken: string; version: number; attempts: number; workerId: string; groupKey: string | null };

/** POST /v1/process-next with `key` (workerId "w" unless `body` names one), expecting 200; the answer. */
export async function processNext<J = LeasedJob>(env: TestEnv, key: string, body: object) {
  const r = await env.http().post("/v1/process-next").set("authorization", key).send({ workerId: "w", ...body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { jobs: J[]; completed?: Array<{ id: string; status: number; problem?: { code: string; status: number } }> };
}

/** POST /v1/jobs/{id}/complete with `key`; the response, whatever its status. */
export function completeJob(env: TestEnv, key: string, id: string, leaseToken: string, result?: unknown) {
  return env.http().post(`/v1/jobs/${id}/complete`).set("authorization", key).send({ leaseToken, result });
}

/** Claims from `queue` through the job service (no HTTP), unscoped, as worker "w" with a 60 s lease, max 1, no wait. */
export function claimDirect(env: TestEnv, queue: string, o: { max?: number; waitMs?: number; workerId?: string } = {}) {
  return env.c.services.jobs.claimNext({ queues: [queue], scope: null, workerId: "w", leaseSeconds: 60, max: 1, waitMs: 0, ...o });
}
