import { randomBytes } from "node:crypto";
import type { Queryable } from "../db/client.js";

/** Standard Webhooks secret form: whsec_ + base64 of 24 random bytes. */
export const newWebhookSecret = () => `whsec_${randomBytes(24).toString("base64")}`;

export function tenantsRepository(sql: Queryable) {
  return {
    /** Creates the tenant's row (and secret) if missing; safe under concurrency. */
    async ensure(tenant: string, q: Queryable = sql): Promise<string> {
      const rows = await q<{ webhookSecret: string }[]>`
        WITH ins AS (
          INSERT INTO tenants (tenant, webhook_secret) VALUES (${tenant}, ${newWebhookSecret()})
          ON CONFLICT (tenant) DO NOTHING RETURNING webhook_secret
        )
        SELECT webhook_secret FROM ins UNION ALL SELECT webhook_secret FROM tenants WHERE tenant = ${tenant}
        LIMIT 1`;
      if (rows[0]) return rows[0].webhookSecret;
      // The row was inserted by a concurrent statement after our snapshot.
      const again = await q<{ webhookSecret: string }[]>`SELECT webhook_secret FROM tenants WHERE tenant = ${tenant}`;
      return again[0]!.webhookSecret;
    },
    async getSecret(tenant: string, q: Queryable = sql): Promise<string | null> {
      const rows = await q<{ webhookSecret: string }[]>`SELECT webhook_secret FROM tenants WHERE tenant = ${tenant}`;
      return rows[0]?.webhookSecret ?? null;
    },
    async rotate(tenant: string, q: Queryable = sql): Promise<string | null> {
      const rows = await q<{ webhookSecret: string }[]>`
        UPDATE tenants SET webhook_secret = ${newWebhookSecret()}, rotated_at = now()
        WHERE tenant = ${tenant} RETURNING webhook_secret`;
      return rows[0]?.webhookSecret ?? null;
    },
    async exists(tenant: string, q: Queryable = sql): Promise<boolean> {
      const rows = await q`SELECT 1 FROM tenants WHERE tenant = ${tenant}
                           UNION ALL SELECT 1 FROM api_keys WHERE tenant = ${tenant} LIMIT 1`;
      return rows.length > 0;
    },
  };
}

export type TenantsRepository = ReturnType<typeof tenantsRepository>;
