import type { FastifyReply } from "fastify";
import { z } from "zod";
import { problem, sendProblem } from "./problem.js";

/** Keyset position (created_at, id). created_at travels as text so its microseconds survive. */
export interface Cursor {
  createdAt: string;
  id: string;
}

// We issue UTC cursors only (PostgreSQL's "+00" text, or ISO "Z").
const TIMESTAMP = /^(\d{4}-\d\d-\d\d)[ T](\d\d:\d\d:\d\d)(\.\d{1,6})?(Z|\+00(:00)?)$/;

/**
 * A real instant in the years jobline writes: the regex alone would let "2026-02-31" through
 * to PostgreSQL, which refuses it, and year 0000 (which PostgreSQL has no such year for).
 */
function validTimestamp(s: string): boolean {
  const m = TIMESTAMP.exec(s);
  if (!m) return false;
  const year = Number(m[1]!.slice(0, 4));
  if (year < 1970) return false;
  const d = new Date(`${m[1]}T${m[2]}Z`);
  return !Number.isNaN(d.getTime()) && d.toISOString().startsWith(`${m[1]}T${m[2]}`);
}

export const encodeCursor = (c: Cursor) => Buffer.from(JSON.stringify([c.createdAt, c.id])).toString("base64url");

/** null for anything that is not a cursor we issued; it is checked before it reaches SQL. */
export function decodeCursor(s: string): Cursor | null {
  try {
    const [createdAt, id] = JSON.parse(Buffer.from(s, "base64url").toString("utf8")) as [unknown, unknown];
    if (typeof createdAt !== "string" || !validTimestamp(createdAt)) return null;
    if (typeof id !== "string" || !z.uuid().safeParse(id).success) return null;
    return { createdAt, id };
  } catch {
    return null;
  }
}

/** keysetPage's null: the cursor is not one we issued. */
export const malformedCursor = (reply: FastifyReply) => sendProblem(reply, problem("invalid_request", "malformed cursor", 400));

/**
 * One page of a newest-first list: fetches one row more than `limit` to learn
 * whether a next page exists. null when `cursor` is not one we issued (a 400).
 */
export async function keysetPage<R, T>(
  q: { cursor?: string | undefined; limit: number },
  fetch: (after: Cursor | undefined, limit: number) => Promise<R[]>,
  positionOf: (row: R) => Cursor,
  toDto: (row: R) => T,
): Promise<{ items: T[]; nextCursor: string | null } | null> {
  const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  if (after === null) return null;
  const rows = await fetch(after, q.limit + 1);
  const page = rows.slice(0, q.limit);
  const last = page[page.length - 1];
  return { items: page.map(toDto), nextCursor: rows.length > q.limit && last ? encodeCursor(positionOf(last)) : null };
}
