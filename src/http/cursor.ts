import { z } from "zod";

/** Keyset position (created_at, id). created_at travels as text so its microseconds survive. */
export interface Cursor {
  createdAt: string;
  id: string;
}

const TIMESTAMP = /^\d{4}-\d\d-\d\d[ T]\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d(:\d\d)?)$/;

export const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify([c.createdAt, c.id])).toString("base64url");

/** null for anything that is not a cursor we issued; it is checked before it reaches SQL. */
export function decodeCursor(s: string): Cursor | null {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as [unknown, unknown];
    if (typeof createdAt !== "string" || !TIMESTAMP.test(createdAt) || Number.isNaN(Date.parse(createdAt.replace(" ", "T"))))
      return null;
    if (typeof id !== "string" || !z.uuid().safeParse(id).success) return null;
    return { createdAt, id };
  } catch {
    return null;
  }
}
