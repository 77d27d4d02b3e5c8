import type postgres from "postgres";

/**
 * Runs `fill` with the tables' indexes (and the foreign keys that hang on jobs' primary key)
 * dropped, then builds them again: bulk loads for plan tests take seconds instead of minutes.
 */
export async function fillWithoutIndexes(tx: postgres.TransactionSql, tables: string[], fill: () => Promise<unknown>) {
  const idx = await tx<{ name: string; def: string; pkey: boolean; tbl: string }[]>`
    SELECT indexrelid::regclass::text AS name, pg_get_indexdef(indexrelid) AS def, indisprimary AS pkey, indrelid::regclass::text AS tbl
    FROM pg_index WHERE indrelid = ANY(${tables}::regclass[])`;
  const fks = await tx<{ name: string; tbl: string; def: string }[]>`
    SELECT conname AS name, conrelid::regclass::text AS tbl, pg_get_constraintdef(oid) AS def
    FROM pg_constraint WHERE confrelid = ANY(${tables}::regclass[]) AND contype = 'f'`;
  for (const f of fks) await tx.unsafe(`ALTER TABLE ${f.tbl} DROP CONSTRAINT ${f.name}`);
  for (const i of idx) await tx.unsafe(i.pkey ? `ALTER TABLE ${i.tbl} DROP CONSTRAINT ${i.name}` : `DROP INDEX ${i.name}`);
  await fill();
  for (const i of idx) await tx.unsafe(i.pkey ? `ALTER TABLE ${i.tbl} ADD CONSTRAINT ${i.name} PRIMARY KEY (id)` : i.def);
  for (const f of fks) await tx.unsafe(`ALTER TABLE ${f.tbl} ADD CONSTRAINT ${f.name} ${f.def}`);
}
