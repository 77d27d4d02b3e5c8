CREATE TABLE "queue_settings" (
	"queue" text NOT NULL,
	"tenant" text NOT NULL,
	"paused" boolean DEFAULT false NOT NULL,
	"concurrency" integer,
	"group_concurrency" integer,
	"rate_limit" integer,
	"rate_period_seconds" integer,
	"default_timeout_seconds" integer,
	"rate_at" timestamp with time zone[] DEFAULT '{}' NOT NULL,
	"rate_n" integer[] DEFAULT '{}' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"version" integer DEFAULT 1 NOT NULL,
	CONSTRAINT "queue_settings_queue_tenant_pk" PRIMARY KEY("queue","tenant"),
	CONSTRAINT "queue_settings_limits" CHECK ("queue_settings"."concurrency" >= 1 AND "queue_settings"."group_concurrency" >= 1 AND "queue_settings"."rate_limit" >= 1 AND "queue_settings"."rate_period_seconds" >= 1),
	CONSTRAINT "queue_settings_timeout" CHECK ("queue_settings"."default_timeout_seconds" BETWEEN 1 AND 86400),
	CONSTRAINT "queue_settings_rate_pair" CHECK (("queue_settings"."rate_limit" IS NULL) = ("queue_settings"."rate_period_seconds" IS NULL))
);
--> statement-breakpoint
CREATE INDEX "jobs_slot_idx" ON "jobs" USING btree ("queue","tenant","group_key") WHERE "jobs"."attempts" > 0 AND ("jobs"."status" = 'running' OR "jobs"."status" = 'queued');--> statement-breakpoint
CREATE INDEX "jobs_key_turn_idx" ON "jobs" USING btree ("queue","tenant","group_key","priority" DESC NULLS LAST,"fair_tag","id") WHERE "jobs"."status" = 'queued' AND "jobs"."fair_tag" < 4503599627370496 AND "jobs"."attempts" = 0 AND "jobs"."group_key" IS NOT NULL;--> statement-breakpoint
-- The gate of capped claims: locks the settings rows of the given (queue, tenant)s in one order,
-- then reads settings and counts. Each query of a VOLATILE plpgsql function takes a fresh
-- snapshot under READ COMMITTED, so the counts include every claim that held the lock before
-- (a plain statement counting after a lock wait would miss them). Rows: one per settings row
-- (group_key NULL), one per candidate key (running, and slots = running + requeued retries).
CREATE OR REPLACE FUNCTION jobline_gate(p_queue text[], p_tenant text[], k_queue text[], k_tenant text[], k_key text[])
RETURNS TABLE (queue text, tenant text, group_key text, at timestamptz, paused boolean, concurrency int,
               group_concurrency int, rate_limit int, running int, slots int, rate_used int)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE t timestamptz;
BEGIN
  PERFORM 1 FROM queue_settings s JOIN unnest(p_queue, p_tenant) AS g(queue, tenant)
    ON s.queue = g.queue AND s.tenant = g.tenant
    ORDER BY s.queue, s.tenant FOR NO KEY UPDATE OF s;
  t := clock_timestamp();
  RETURN QUERY
    SELECT s.queue, s.tenant, NULL::text, t, s.paused, s.concurrency, s.group_concurrency, s.rate_limit,
           (SELECT count(*)::int FROM jobs j WHERE j.queue = s.queue AND j.tenant = s.tenant
              AND (j.attempts > 0 AND (j.status = 'running' OR j.status = 'queued')) AND j.status = 'running'),
           NULL::int,
           coalesce((SELECT sum(r.n)::int FROM unnest(s.rate_at, s.rate_n) AS r(at, n)
                     WHERE r.at >= t - make_interval(secs => s.rate_period_seconds)), 0)
    FROM queue_settings s JOIN unnest(p_queue, p_tenant) AS g(queue, tenant) ON s.queue = g.queue AND s.tenant = g.tenant
    UNION ALL
    SELECT k.queue, k.tenant, k.key, t, NULL, NULL, NULL, NULL,
           (count(*) FILTER (WHERE j.status = 'running'))::int, count(j.id)::int, NULL
    FROM unnest(k_queue, k_tenant, k_key) AS k(queue, tenant, key)
    LEFT JOIN jobs j ON j.queue = k.queue AND j.tenant = k.tenant AND j.group_key = k.key
         AND (j.attempts > 0 AND (j.status = 'running' OR j.status = 'queued'))
    GROUP BY k.queue, k.tenant, k.key;
END $$;
