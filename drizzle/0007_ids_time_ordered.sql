-- UUIDv7 (RFC 9562): 48 bits of Unix time in milliseconds, then random bits (a v4 UUID with
-- its first six bytes replaced and its version nibble turned from 4 into 7). Jobs submitted
-- together sit together in the primary key; src/domain/ids.ts makes the same ids in Node.
-- Plain SQL rather than PostgreSQL 18's uuidv7(), so it runs on every supported server.
CREATE FUNCTION "jobline_uuidv7"() RETURNS uuid LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
  SELECT encode(
    set_bit(set_bit(
      overlay(uuid_send(gen_random_uuid())
              PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
              FROM 1 FOR 6),
      52, 1), 53, 1),
    'hex')::uuid
$$;--> statement-breakpoint
-- jobs first: the order in which claims and completions lock these tables, so a running
-- release's transaction and this one are less likely to deadlock (migrate() retries if they do).
ALTER TABLE "jobs" ALTER COLUMN "id" SET DEFAULT jobline_uuidv7();--> statement-breakpoint
ALTER TABLE "batches" ALTER COLUMN "id" SET DEFAULT jobline_uuidv7();--> statement-breakpoint
ALTER TABLE "webhook_outbox" ALTER COLUMN "id" SET DEFAULT jobline_uuidv7();
