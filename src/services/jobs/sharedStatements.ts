import type { Sql } from "../../db/client.js";
import type { Metrics } from "../../metrics.js";
import type { CompleteItem, JobRow, JobsRepository, LeanJobRow, NewJob } from "../../repositories/jobs.js";
import type { ClaimFields, Taker, WorkerRow } from "../../repositories/jobs/rows.js";
import type { Cancel } from "../tripwire.js";
import type { CappedQueues } from "../queues/capped.js";
import { inHalves, keyedCoalescer } from "../coalesce.js";
import { isDataError, isOutcomeUnknown } from "../../db/errors.js";
import { inTx, retryIfLost } from "../../db/tx.js";
import { sameUuid, type TenantScope } from "./input.js";

/**
 * Statements of one kind (and filter) a process runs at once; calls arriving meanwhile share
 * the next one. One measured best: a second overlapping statement split the batches and cost
 * more commits than it saved in waiting (`npx tsx bench/quick.ts http`, README).
 */
const COALESCE_IN_FLIGHT = 1;
/** Most rows one coalesced statement carries. */
const COALESCE_MAX_ROWS = 500;

/** A complete whose result PostgreSQL refused (answered 400 for that item alone). */
export const REFUSED = "refused" as const;

/** `fields`: the columns the claim returns (worker rows for callers that asked for worker fields). */
export type ClaimKey = { queues: string[]; kinds?: string[] | undefined; tenant: TenantScope; leaseSeconds: number; fields?: ClaimFields | undefined };
export type ClaimRequest = { workerId: string; max: number; signal?: Cancel | undefined };
type PollRequest = { acks: CompleteItem[]; taker: ClaimRequest };
type PollAnswer = { answers: Array<LeanJobRow | null | typeof REFUSED>; claimed: WorkerRow[] };

/** Calls can share a claim statement only when their filters match. */
const claimKeyOf = (k: ClaimKey) => JSON.stringify([k.queues, k.kinds ?? [], k.tenant, k.leaseSeconds, k.fields ?? "full"]);
const itemKey = (i: CompleteItem) => `${i.id} ${i.leaseToken}`;

/**
 * Which item each finalised row answers. A job is updated at most once however often it
 * appears, so only the first item holding the winning token gets the row; repeats go the
 * replay path, like a repeated request.
 */
export function matchWinners<R extends { id: string; leaseToken: string | null }>(requests: CompleteItem[][], rows: R[]) {
  const won = new Map(rows.map((r) => [r.id, r]));
  return requests.map((req) =>
    req.map((i) => {
      const row = won.get(i.id.toLowerCase());
      if (!row || !sameUuid(row.leaseToken, i.leaseToken)) return null;
      won.delete(row.id);
      return row;
    }),
  );
}

/** The items of several requests, each (id, token) once. */
function distinctItems(requests: CompleteItem[][]) {
  const seen = new Set<string>();
  return requests.flat().filter((i) => !seen.has(itemKey(i)) && seen.add(itemKey(i)));
}

/** Counts a poll's statement by whether it found anything; returns what it found. */
export function countStatement<T extends unknown[]>(
  metrics: Metrics,
  statement: "claim" | "promote",
  found: T,
  any = found.some((x) => !Array.isArray(x) || x.length > 0),
) {
  metrics.pollStatements.inc({ statement, outcome: any ? "found" : "empty" });
  return found;
}

/** A poll whose client left while it queued takes nothing, so no job is leased to nobody. */
const liveTakers = (requests: ClaimRequest[]) => requests.map((r) => (r.signal?.aborted ? { ...r, max: 0 } : r));

/** What the shared statements run on. */
interface Deps {
  sql: Sql;
  jobs: JobsRepository;
  capped: CappedQueues;
  metrics: Metrics;
}

/** After an empty free claim: were these queues capped (then the gated claim must run)? */
async function learnCapped(d: Deps, key: ClaimKey) {
  if (!(await d.jobs.hasSettings(key))) return false;
  for (const q of key.queues) d.capped.add(q);
  return true;
}

/**
 * A claim by the text its queues need: gated for queues with settings, free for the rest.
 * Not idempotent: a lost claim that committed leaves its jobs to the reaper after the lease.
 */
async function claimRouted(d: Deps, key: ClaimKey, takers: Taker[]): Promise<WorkerRow[][]> {
  const claim = (gated: boolean) => retryIfLost(() => d.jobs.claimNextFor(key, takers, gated), false);
  if (d.capped.any(key.queues)) return countStatement(d.metrics, "claim", await claim(true));
  const rows = await claim(false);
  if (rows.some((r) => r.length > 0) || !(await learnCapped(d, key))) return countStatement(d.metrics, "claim", rows);
  return countStatement(d.metrics, "claim", await claim(true));
}

/** Claims of one filter share a statement; polls whose client left take nothing. */
async function claimShared(d: Deps, key: ClaimKey, requests: ClaimRequest[]): Promise<WorkerRow[][]> {
  const live = liveTakers(requests);
  if (live.every((r) => r.max === 0)) return live.map(() => []);
  return claimRouted(d, key, live);
}

// Completes of one tenant scope share a statement; an item repeated within it is answered
// by matchWinners, the others by the replay path. A result PostgreSQL refuses is answered
// "refused" for its own item only: the statement is run again in halves without it.
async function completeShared<Lean extends boolean>(d: Deps, lean: Lean, scope: TenantScope, requests: CompleteItem[][]) {
  type Row = Lean extends true ? LeanJobRow : JobRow;
  const items = distinctItems(requests);
  const out: Row[] = [];
  const bad = new Set<string>();
  // Fenced by the lease token: a second run finds the first one's rows and answers them as replays.
  const run = (part: CompleteItem[]) => retryIfLost(() => d.jobs.completeManyIfLeased(part, scope, undefined, lean), true);
  for (const p of await inHalves(items, run, isDataError)) {
    if (p.ok) out.push(...(p.out as Row[]));
    else if (p.items.length === 1 && isDataError(p.error)) bad.add(itemKey(p.items[0]!));
    else throw p.error;
  }
  const answers = matchWinners(requests, out);
  if (bad.size === 0) return answers;
  return requests.map((req, r) => req.map((i, k) => (bad.has(itemKey(i)) ? REFUSED : answers[r]![k]!)));
}

// Polls that acknowledge jobs (process-next's `complete`) with the same filter share one
// statement for their acknowledgements and their claims. A result PostgreSQL refuses rolls
// the statement back, so nothing happened: the acknowledgements then take completeShared's
// path (refused items answered on their own) and the claims claimShared's statement.
async function pollShared(d: Deps, key: ClaimKey, requests: PollRequest[]): Promise<PollAnswer[]> {
  const takers = liveTakers(requests.map((r) => r.taker));
  const acks = requests.map((r) => r.acks);
  const zip = (answers: PollAnswer["answers"][], claimed: WorkerRow[][]) =>
    requests.map((_, i) => ({ answers: answers[i]!, claimed: claimed[i]! }));
  const none = takers.every((t) => t.max === 0);
  try {
    const gated = d.capped.any(key.queues);
    const r = await retryIfLost(() => d.jobs.completeAndClaimFor(distinctItems(acks), key, takers, gated), false);
    const claimed =
      gated || none || r.claimed.some((c) => c.length > 0) || !(await learnCapped(d, key))
        ? r.claimed
        : await retryIfLost(() => d.jobs.claimNextFor(key, takers, true), false);
    countStatement(d.metrics, "claim", claimed);
    return zip(matchWinners(acks, r.completed), claimed);
  } catch (e) {
    // Lost after it was sent: the completions are safe to run again (fenced), the claims are
    // not; jobs the lost statement may have claimed go back to the queue when their lease ends.
    if (isOutcomeUnknown(e)) return zip(await completeShared(d, true, key.tenant, acks), takers.map(() => []));
    if (!isDataError(e)) throw e;
    const claimed = none ? takers.map(() => []) : claimRouted(d, key, takers);
    const [answers, rows] = await Promise.all([completeShared(d, true, key.tenant, acks), claimed]);
    return zip(answers, rows);
  }
}

// Submits without an idempotency key share one multi-row insert per round. Alone, each
// would lock its (queue, tenant, group) fairness row until its own commit, so concurrent
// submits of one tenant queued up behind one row, one commit at a time.
async function submitShared(d: Deps, batch: Array<NewJob & { id: string }>): Promise<JobRow[]> {
  // Alone, one statement: a multi-row insert takes five round trips, which an idle
  // service would add to every submit's latency.
  // Run again only when the lost statement certainly did nothing: without a key, a second insert could duplicate.
  if (batch.length === 1) return [(await retryIfLost(() => d.jobs.insert(batch[0]!), false))!];
  const rows = await retryIfLost(() => inTx(d.sql, (tx) => d.jobs.insertMany(batch, tx)), false);
  const byId = new Map(rows.map((r) => [r.id, r]));
  return batch.map((j) => byId.get(j.id)!);
}

export function createSharedStatements(sql: Sql, jobs: JobsRepository, capped: CappedQueues, metrics: Metrics) {
  const d: Deps = { sql, jobs, capped, metrics };
  const shared = { inFlight: COALESCE_IN_FLIGHT, maxUnits: COALESCE_MAX_ROWS };
  return {
    claimRouted: (key: ClaimKey, takers: Taker[]) => claimRouted(d, key, takers),
    claimTogether: keyedCoalescer<ClaimKey, ClaimRequest, WorkerRow[]>((key, requests) => claimShared(d, key, requests), {
      ...shared,
      units: (r) => r.max,
      keyOf: claimKeyOf,
    }),
    completeTogether: keyedCoalescer<TenantScope, CompleteItem[], Array<JobRow | null | typeof REFUSED>>(
      (scope, requests) => completeShared(d, false, scope, requests),
      { ...shared, units: (r) => r.length, keyOf: (k) => k ?? "*" },
    ),
    pollTogether: keyedCoalescer<ClaimKey, PollRequest, PollAnswer>((key, requests) => pollShared(d, key, requests), {
      ...shared,
      units: (r) => r.acks.length + r.taker.max,
      keyOf: claimKeyOf,
    }),
    // Per queue, so a submit waiting on one queue's rows never holds up another queue's;
    // a payload PostgreSQL refuses fails only its own submit.
    submitTogether: keyedCoalescer<string, NewJob & { id: string }, JobRow>((_queue, batch) => submitShared(d, batch), {
      ...shared,
      units: () => 1,
      isolate: isDataError,
      keyOf: (q) => q,
    }),
  };
}

export type SharedStatements = ReturnType<typeof createSharedStatements>;
