import type { Sql } from "../../src/db/client.js";

/**
 * A real fault in the database: the first `times` updates that would make a job of `queue`
 * succeed fail with SQLSTATE `code` (a trigger). Returns how many it has refused so far, and
 * the clean-up.
 */
export async function refuseCompletions(sql: Sql, queue: string, times: number, code: string) {
  const name = `refuse_${queue.replace(/\W/g, "_")}`;
  await sql.unsafe(`CREATE SEQUENCE ${name}_seq`);
  await sql.unsafe(`CREATE FUNCTION ${name}() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF nextval('${name}_seq') <= ${Number(times)} THEN RAISE EXCEPTION 'refused' USING ERRCODE = '${code.replace(/\W/g, "")}'; END IF;
      RETURN NEW;
    END $$`);
  await sql.unsafe(`CREATE TRIGGER ${name} BEFORE UPDATE ON jobs FOR EACH ROW
    WHEN (NEW.queue = '${queue.replace(/'/g, "''")}' AND NEW.status = 'succeeded') EXECUTE FUNCTION ${name}()`);
  return {
    /** Updates the trigger has seen (the refused ones, then the first let through). */
    seen: async () => Number((await sql.unsafe<[{ n: string }]>(`SELECT last_value AS n FROM ${name}_seq`))[0].n),
    drop: () => sql.unsafe(`DROP TRIGGER ${name} ON jobs; DROP FUNCTION ${name}(); DROP SEQUENCE ${name}_seq`).then(() => {}),
  };
}
