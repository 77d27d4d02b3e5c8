import type { Queryable } from "../db/client.js";

export interface OutboxDelivery {
  id: string;
  tenant: string;
  subjectId: string;
  eventType: string;
  url: string;
  /**
   * The snapshot as JSON text: parsed by the caller, so the driver's key
   * transform cannot rewrite keys inside the job's payload or result.
   */
  dataText: string;
  /** Counts this claim: a dispatcher that dies mid-request still used the attempt. */
  attempts: number;
  leaseToken: string;
  createdAt: Date;
  /** The tenant's current signing secret; null when the tenant has none yet. */
  secret: string | null;
}

/**
 * The webhook outbox. Rows are written by finaliseTail() (jobs/finalise.ts) in the same
 * statement as the job or batch finalisation; this repository only claims,
 * settles and prunes them. Every settlement is fenced by the claim's lease
 * token, so a dispatcher whose lease ran out cannot mark a row another one
 * has taken over.
 */
export function outboxRepository(sql: Queryable) {
  return {
    /** Due rows → leased to the caller, in one statement. */
    async claimDue(limit: number, leaseMs: number, q: Queryable = sql): Promise<OutboxDelivery[]> {
      return q<OutboxDelivery[]>`
        WITH c AS (
          SELECT id FROM webhook_outbox
          WHERE status = 'pending' AND next_attempt_at <= now()
            AND (lease_expires_at IS NULL OR lease_expires_at < now())
          ORDER BY next_attempt_at
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED
        )
        UPDATE webhook_outbox o SET
          lease_token = gen_random_uuid(),
          lease_expires_at = now() + make_interval(secs => ${leaseMs / 1000}::float8),
          attempts = o.attempts + 1
        FROM c WHERE o.id = c.id
        RETURNING o.id, o.tenant, o.subject_id, o.event_type, o.url, o.data::text AS data_text,
                  o.attempts, o.lease_token, o.created_at,
                  (SELECT t.webhook_secret FROM tenants t WHERE t.tenant = o.tenant) AS secret`;
    },

    async markDelivered(id: string, leaseToken: string, q: Queryable = sql): Promise<boolean> {
      const rows = await q`
        UPDATE webhook_outbox SET status = 'delivered', delivered_at = now(), last_error = NULL,
               lease_token = NULL, lease_expires_at = NULL
        WHERE id = ${id} AND status = 'pending' AND lease_token = ${leaseToken}
        RETURNING 1`;
      return rows.length > 0;
    },

    /**
     * A failed attempt: back to pending after `retryBaseMs * 2^(attempts-1)`
     * (capped at 6 h), or `dead` once `maxAttempts` are used or `final` is set.
     * Returns the resulting status, or null when the lease was lost.
     */
    async markFailed(
      id: string,
      leaseToken: string,
      a: { error: string; retryBaseMs: number; maxAttempts: number; final?: boolean },
      q: Queryable = sql,
    ): Promise<"pending" | "dead" | null> {
      const dead = q`(${a.final ?? false}::boolean OR webhook_outbox.attempts >= ${a.maxAttempts})`;
      const rows = await q<{ status: "pending" | "dead" }[]>`
        UPDATE webhook_outbox SET
          status = CASE WHEN ${dead} THEN 'dead'::outbox_status ELSE 'pending'::outbox_status END,
          next_attempt_at = CASE WHEN ${dead} THEN next_attempt_at
            ELSE now() + make_interval(secs => LEAST(21600, ${a.retryBaseMs}::float8 / 1000 * power(2, GREATEST(attempts - 1, 0)))) END,
          last_error = ${a.error.slice(0, 2000)},
          lease_token = NULL, lease_expires_at = NULL
        WHERE id = ${id} AND status = 'pending' AND lease_token = ${leaseToken}
        RETURNING status`;
      return rows[0]?.status ?? null;
    },

    /** Retention: delivered and dead rows created before the cutoff, at most `limit` per call. */
    async deleteSettledBefore(cutoff: Date, limit: number, q: Queryable = sql): Promise<number> {
      const rows = await q`
        DELETE FROM webhook_outbox WHERE id IN (
          SELECT id FROM webhook_outbox
          WHERE status <> 'pending' AND created_at < ${cutoff}
          LIMIT ${limit}
          FOR UPDATE SKIP LOCKED)
        RETURNING 1`;
      return rows.length;
    },
  };
}

export type OutboxRepository = ReturnType<typeof outboxRepository>;
