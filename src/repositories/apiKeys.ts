import type { Queryable } from "../db/client.js";

export interface ApiKeyRow {
  id: string;
  tenant: string;
  roles: string[];
  name: string | null;
  keyHash: string;
  prefix: string;
  createdAt: Date;
}

export function apiKeysRepository(sql: Queryable) {
  return {
    /** A key whose hash exists already inserts nothing (null). */
    async insert(k: { tenant: string; roles: string[]; name: string | null; keyHash: string; prefix: string }) {
      const [row] = await sql<ApiKeyRow[]>`
        INSERT INTO api_keys (tenant, roles, name, key_hash, prefix)
        VALUES (${k.tenant}, ${k.roles}::text[], ${k.name}, ${k.keyHash}, ${k.prefix})
        ON CONFLICT DO NOTHING
        RETURNING *`;
      return row ?? null;
    },
    async findByHash(keyHash: string) {
      const [row] = await sql<ApiKeyRow[]>`SELECT * FROM api_keys WHERE key_hash = ${keyHash}`;
      return row ?? null;
    },
    async list(tenant: string | null) {
      return sql<ApiKeyRow[]>`
        SELECT * FROM api_keys ${tenant === null ? sql`` : sql`WHERE tenant = ${tenant}`} ORDER BY created_at DESC`;
    },
    async findById(id: string) {
      const [row] = await sql<ApiKeyRow[]>`SELECT * FROM api_keys WHERE id = ${id}`;
      return row ?? null;
    },
    async platformAdminExists() {
      const rows = await sql`SELECT 1 FROM api_keys WHERE tenant = '*' AND 'admin' = ANY(roles) LIMIT 1`;
      return rows.length > 0;
    },
    async deleteById(id: string) {
      const [row] = await sql<ApiKeyRow[]>`DELETE FROM api_keys WHERE id = ${id} RETURNING *`;
      return row ?? null;
    },
  };
}

export type ApiKeysRepository = ReturnType<typeof apiKeysRepository>;
