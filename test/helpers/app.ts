import type { Api } from "../../src/http/types.js";
import supertest from "supertest";
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
