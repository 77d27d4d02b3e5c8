import { desc, eq } from "drizzle-orm";
import type { PostgresJsDatabase } from "drizzle-orm/postgres-js";
import type * as schema from "../db/schema.js";
import { apiKeys } from "../db/schema.js";

export type ApiKeyRow = typeof apiKeys.$inferSelect;

export function apiKeysRepository(db: PostgresJsDatabase<typeof schema>) {
  return {
    async insert(k: { tenant: string; roles: string[]; name: string | null; keyHash: string; prefix: string }) {
      const [row] = await db.insert(apiKeys).values(k).onConflictDoNothing().returning();
      return row ?? null;
    },
    async findByHash(keyHash: string) {
      const [row] = await db.select().from(apiKeys).where(eq(apiKeys.keyHash, keyHash));
      return row ?? null;
    },
    async list(tenant: string | null) {
      const q = db.select().from(apiKeys);
      return tenant === null
        ? q.orderBy(desc(apiKeys.createdAt))
        : q.where(eq(apiKeys.tenant, tenant)).orderBy(desc(apiKeys.createdAt));
    },
    async findById(id: string) {
      const [row] = await db.select().from(apiKeys).where(eq(apiKeys.id, id));
      return row ?? null;
    },
    async deleteById(id: string) {
      const [row] = await db.delete(apiKeys).where(eq(apiKeys.id, id)).returning();
      return row ?? null;
    },
  };
}

export type ApiKeysRepository = ReturnType<typeof apiKeysRepository>;
