// Pagination's request and answer schemas, shared by every list (the cursor itself: ../cursor.ts).
import { z } from "zod";

/** How many items one page holds: 1..500, `byDefault` when the query names none. */
export const pageLimit = (byDefault: number) => z.coerce.number().int().min(1).max(500).default(byDefault);

/** The querystring fields every keyset-paginated list takes. */
export const PageQuery = {
  limit: pageLimit(50),
  cursor: z.string().max(512).optional(),
};

/** A list's answer schema, documented as the component `id`. Call it where the route is registered (components keep that order). */
export const pageSchema = <T extends z.ZodType>(item: T, id: string) =>
  z.object({ items: z.array(item), nextCursor: z.string().nullable() }).meta({ id });
