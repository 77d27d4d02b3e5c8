import { randomFillSync } from "node:crypto";

/**
 * Ids of jobs, batches and webhook events are UUIDv7 (RFC 9562): 48 bits of Unix time in
 * milliseconds, a 12-bit sequence, then 62 random bits. Jobs submitted together sit together
 * in the primary key, so a claim or an acknowledgement of 500 of them reads and writes a few
 * leaf pages instead of one per job: with random (v4) ids that was a fifth of PostgreSQL's
 * time per job. An id tells when its job was created, to the millisecond, as createdAt does.
 *
 * Within a process the ids only grow (RFC 9562 method 1): the sequence counts ids of the same
 * millisecond, and when it runs out, or the clock steps back, the time part runs ahead of the
 * clock instead of repeating. Uniqueness across processes rests on the random bits.
 * Every job id is made here; the database makes ids of the same form, to the millisecond
 * (jobline_uuidv7(), drizzle/0007), for batches and webhook events.
 */
export function uuidv7(nowMs: number): string {
  const now = Math.trunc(nowMs);
  if (now > lastMs) {
    lastMs = now;
    seq = 0;
  } else if (++seq > 0xfff) {
    lastMs++;
    seq = 0;
  }
  const r = randomBytes8();
  const t = lastMs.toString(16).padStart(12, "0");
  return (
    `${t.slice(0, 8)}-${t.slice(8, 12)}-${(0x7000 | seq).toString(16)}-` +
    `${HEX[(r[0]! & 0x3f) | 0x80]}${HEX[r[1]!]}-${HEX[r[2]!]}${HEX[r[3]!]}${HEX[r[4]!]}${HEX[r[5]!]}${HEX[r[6]!]}${HEX[r[7]!]}`
  );
}

let lastMs = 0;
let seq = 0;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
// One call to the system's generator per 500 ids, as crypto.randomUUID keeps a pool of its own.
const pool = Buffer.allocUnsafe(4000);
let at = pool.length;
function randomBytes8(): Buffer {
  if (at === pool.length) {
    randomFillSync(pool);
    at = 0;
  }
  at += 8;
  return pool.subarray(at - 8, at);
}
