import { sql } from "drizzle-orm";
import { timestamp } from "drizzle-orm/pg-core";

/** UUIDv7, made by the database for rows inserted without an id (see src/domain/ids.ts). */
export const timeOrderedId = sql`jobline_uuidv7()`;

export const tz = (name: string) => timestamp(name, { withTimezone: true, mode: "date" });
