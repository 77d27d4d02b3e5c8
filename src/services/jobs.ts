import { createHash, randomUUID } from "node:crypto";
import type { Config } from "../config.js";
import type { Queryable, Sql } from "../db/client.js";
import { uuidv7 } from "../domain/ids.js";
import { isTerminal, type JobStatus } from "../domain/jobs.js";
import { storable, storableProblem } from "../domain/json.js";
import { err, ok } from "../domain/outcomes.js";
import type { DoneRow, JobRow, JobsRepository, NewJob } from "../repositories/jobs.js";
import type { Metrics } from "../metrics.js";
import type { Cancel } from "./cancel.js";
import { inHalves, keyedCoalescer } from "./coalesce.js";
import type { Announcement, Notifier } from "./notifier.js";
import { inTx, isConflictVictim, isDataError, isDbUnavailable, isOutcomeUnknown, retryIfLost } from "./tx.js";

/**
 * Statements of one kind (and filter) a process runs at once; calls arriving
 * meanwhile share the next one. One measured best: a second overlapping
 * statement split the batches and cost more commits than it saved in waiting
 * (`npx tsx bench/quick.ts http`, README).
 */
const COALESCE_IN_FLIGHT = 1;
/** A complete whose result PostgreSQL refused (answered 400 for that item alone). */
const REFUSED = "refused" as const;
const refusedProblem = () => err("invalid", "the database refused this result");

/** Most rows one coalesced statement carries. */
const COALESCE_MAX_ROWS = 500;

export const MAX_PAYLOAD_BYTES = 256 * 1024;

/** `null` tenant scope means a platform key (tenant `*`) that sees every tenant. */
export type TenantScope = string | null;

export interface SubmitInput {
  queue: string;
  kind: string;
  payload: unknown;
  priority?: number | undefined;
  groupKey?: string | undefined;
  runAt?: string | undefined;
  maxAttempts?: number | undefined;
  webhookUrl?: string | undefined;
}

/** Stable JSON (sorted keys), so an idempotent replay matches however the client orders fields. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v !== null && typeof v === "object") {
    const entries = Object.entries(v as Record<string, unknown>)
      .filter(([, x]) => x !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, x]) => `${JSON.stringify(k)}:${canonicalJson(x)}`).join(",")}}`;
  }
  return JSON.stringify(v);
}

export const payloadBytes = (p: unknown) => Buffer.byteLength(JSON.stringify(p ?? null));

/** Why a job's result cannot be stored: held to the payload's 256 KiB (413), and to what jsonb stores (400). */
export function resultRefusal(result: unknown) {
  const s = storable(result);
  if (!s.ok) return err("invalid", `result ${s.problem}`);
  return s.bytes > MAX_PAYLOAD_BYTES ? err("payload_too_large", "result exceeds 256 KiB") : null;
}

export function toNewJob(tenant: string, i: SubmitInput, extra: Partial<NewJob> = {}): NewJob {
  return {
    tenant,
    queue: i.queue,
    kind: i.kind,
    payload: i.payload ?? null,
    priority: i.priority ?? 0,
    groupKey: i.groupKey ?? null,
    runAt: i.runAt ? new Date(i.runAt) : null,
    maxAttempts: i.maxAttempts ?? 5,
    webhookUrl: i.webhookUrl ?? null,
    idempotencyKey: null,
    requestHash: null,
    batchId: null,
    ...extra,
  };
}

/** UUIDs as clients may send them (any case) against PostgreSQL's lower-case text. */
const sameUuid = (a: string | null, b: string) => a !== null && a.toLowerCase() === b.toLowerCase();

/** How often a claiming process looks for held jobs that are due, and how many it tags per statement. */
export const PROMOTE_EVERY_MS = 250;
const PROMOTE_MAX_ROWS = 1000;

export function createJobService(deps: {
  sql: Sql;
  jobs: JobsRepository;
  notifier: Notifier;
  metrics: Metrics;
  config: Pick<Config, "JOBLINE_BACKOFF_BASE_MS" | "JOBLINE_BACKOFF_MAX_MS">;
  random?: () => number;
}) {
  const { jobs, notifier, metrics } = deps;
  const random = deps.random ?? Math.random;

  const countWin = (from: JobStatus, rows: Array<DoneRow | JobRow>) => {
    // One increment per resulting status, not per row: labels are hashed on every call.
    const by = new Map<JobStatus, number>();
    for (const r of rows) by.set(r.status, (by.get(r.status) ?? 0) + 1);
    for (const [to, n] of by) metrics.transitions.inc({ from, to }, n);
    // Wait and run-time histograms from the rows the statement returned: no query of their own.
    if (from === "running") metrics.jobsFinished(rows);
    else if (by.get("running")) metrics.jobsStarted(rows.filter((r): r is JobRow => r.status === "running" && "runAt" in r));
  };
  const lost = (operation: string) => metrics.racesLost.inc({ operation });
  /** Counts a poll's statement by whether it found anything; returns what it found. */
  const countStatement = <T extends unknown[]>(statement: "claim" | "promote", found: T, any = found.some((x) => !Array.isArray(x) || x.length > 0)) => {
    metrics.pollStatements.inc({ statement, outcome: any ? "found" : "empty" });
    return found;
  };

  type ClaimKey = { queues: string[]; kinds?: string[] | undefined; tenant: TenantScope; leaseSeconds: number };
  type ClaimRequest = { workerId: string; max: number; signal?: Cancel | undefined };
  /** Calls can share a claim statement only when their filters match. */
  const claimKeyOf = (k: ClaimKey) => JSON.stringify([k.queues, k.kinds ?? [], k.tenant, k.leaseSeconds]);
  // Concurrent polls with the same filter share one claim statement; a poll whose client
  // left while it queued takes nothing, so no job is leased to nobody.
  const claimTogether = keyedCoalescer<ClaimKey, ClaimRequest, JobRow[]>(
    async (key, requests) => {
      const live = requests.map((r) => (r.signal?.aborted ? { ...r, max: 0 } : r));
      if (live.every((r) => r.max === 0)) return live.map(() => []);
      // Not idempotent: a lost claim that committed leaves its jobs to the reaper after the lease.
      return countStatement("claim", await retryIfLost(() => jobs.claimNextFor(key, live), false));
    },
    {
      inFlight: COALESCE_IN_FLIGHT,
      maxUnits: COALESCE_MAX_ROWS,
      units: (r) => r.max,
      keyOf: claimKeyOf,
    },
  );

  type CompleteItem = { id: string; leaseToken: string; result: unknown };
  /**
   * Which item each finalised row answers. A job is updated at most once however often it
   * appears, so only the first item holding the winning token gets the row; repeats go the
   * replay path, like a repeated request.
   */
  const matchWinners = <R extends { id: string; leaseToken: string | null }>(requests: CompleteItem[][], rows: R[]) => {
    const won = new Map(rows.map((r) => [r.id, r]));
    return requests.map((req) =>
      req.map((i) => {
        const row = won.get(i.id.toLowerCase());
        if (!row || !sameUuid(row.leaseToken, i.leaseToken)) return null;
        won.delete(row.id);
        return row;
      }),
    );
  };
  const itemKey = (i: CompleteItem) => `${i.id} ${i.leaseToken}`;
  /** The items of several requests, each (id, token) once. */
  const distinctItems = (requests: CompleteItem[][]) => {
    const seen = new Set<string>();
    return requests.flat().filter((i) => !seen.has(itemKey(i)) && seen.add(itemKey(i)));
  };
  // Completes of one tenant scope share a statement; an item repeated within it is answered
  // by matchWinners, the others by the replay path. A result PostgreSQL refuses is answered
  // "refused" for its own item only: the statement is run again in halves without it.
  async function completeShared<Lean extends boolean>(lean: Lean, scope: TenantScope, requests: CompleteItem[][]) {
    type Row = Lean extends true ? LeanRow : JobRow;
    const items = distinctItems(requests);
    const out: Row[] = [];
    const bad = new Set<string>();
    // Fenced by the lease token: a second run finds the first one's rows and answers them as replays.
    const run = (part: CompleteItem[]) => retryIfLost(() => jobs.completeManyIfLeased(part, scope, undefined, lean), true);
    for (const p of await inHalves(items, run, isDataError)) {
      if (p.ok) out.push(...(p.out as Row[]));
      else if (p.items.length === 1 && isDataError(p.error)) bad.add(itemKey(p.items[0]!));
      else throw p.error;
    }
    const answers = matchWinners(requests, out);
    if (bad.size === 0) return answers;
    return requests.map((req, r) => req.map((i, k) => (bad.has(itemKey(i)) ? REFUSED : answers[r]![k]!)));
  }
  type LeanRow = DoneRow;
  const completeOptions = { inFlight: COALESCE_IN_FLIGHT, maxUnits: COALESCE_MAX_ROWS, units: (r: CompleteItem[]) => r.length, keyOf: (k: TenantScope) => k ?? "*" };
  const completeTogether = keyedCoalescer<TenantScope, CompleteItem[], Array<JobRow | null | typeof REFUSED>>(
    (scope, requests) => completeShared(false, scope, requests),
    completeOptions,
  );

  // Polls that acknowledge jobs (process-next's `complete`) with the same filter share one
  // statement for their acknowledgements and their claims. A result PostgreSQL refuses rolls
  // the statement back, so nothing happened: the acknowledgements then take completeShared's
  // path (refused items answered on their own) and the claims claimTogether's statement.
  type PollRequest = { acks: CompleteItem[]; taker: ClaimRequest };
  type PollAnswer = { answers: Array<LeanRow | null | typeof REFUSED>; claimed: JobRow[] };
  const pollTogether = keyedCoalescer<ClaimKey, PollRequest, PollAnswer>(
    async (key, requests) => {
      const takers = requests.map(({ taker: t }) => (t.signal?.aborted ? { ...t, max: 0 } : t));
      const acks = requests.map((r) => r.acks);
      const zip = (answers: PollAnswer["answers"][], claimed: JobRow[][]) =>
        requests.map((_, i) => ({ answers: answers[i]!, claimed: claimed[i]! }));
      try {
        const r = await retryIfLost(() => jobs.completeAndClaimFor(distinctItems(acks), key, takers), false);
        countStatement("claim", r.claimed);
        return zip(matchWinners(acks, r.completed), r.claimed);
      } catch (e) {
        // Lost after it was sent: the completions are safe to run again (fenced), the claims are
        // not; jobs the lost statement may have claimed go back to the queue when their lease ends.
        if (isOutcomeUnknown(e)) return zip(await completeShared(true, key.tenant, acks), takers.map(() => []));
        if (!isDataError(e)) throw e;
        const claimed = takers.every((t) => t.max === 0) ? takers.map(() => []) : jobs.claimNextFor(key, takers);
        const [answers, rows] = await Promise.all([completeShared(true, key.tenant, acks), claimed]);
        return zip(answers, rows);
      }
    },
    {
      inFlight: COALESCE_IN_FLIGHT,
      maxUnits: COALESCE_MAX_ROWS,
      units: (r) => r.acks.length + r.taker.max,
      keyOf: claimKeyOf,
    },
  );

  // Submits without an idempotency key share one multi-row insert per round. Alone, each
  // would lock its (queue, tenant, group) fairness row until its own commit, so concurrent
  // submits of one tenant queued up behind one row, one commit at a time.
  const submitTogether = keyedCoalescer<string, NewJob & { id: string }, JobRow>(
    async (_queue, batch) => {
      // Alone, one statement: a multi-row insert takes five round trips, which an idle
      // service would add to every submit's latency.
      // Run again only when the lost statement certainly did nothing: without a key, a second insert could duplicate.
      if (batch.length === 1) return [(await retryIfLost(() => jobs.insert(batch[0]!), false))!];
      const rows = await retryIfLost(() => inTx(deps.sql, (tx) => jobs.insertMany(batch, tx)), false);
      const byId = new Map(rows.map((r) => [r.id, r]));
      return batch.map((j) => byId.get(j.id)!);
    },
    // Per queue, so a submit waiting on one queue's rows never holds up another queue's;
    // a payload PostgreSQL refuses fails only its own submit.
    { inFlight: COALESCE_IN_FLIGHT, maxUnits: COALESCE_MAX_ROWS, units: () => 1, isolate: isDataError, keyOf: (q) => q },
  );

  /** Wakes one waiting poll that can take `row`, when it is claimable now (run_at and created_at are the database's clock). */
  const announce = (row: JobRow) => {
    if (row.runAt.getTime() <= row.createdAt.getTime()) notifier.notify(row.queue, { kind: row.kind, tenant: row.tenant });
  };

  async function submit(tenant: string, input: SubmitInput, idempotencyKey?: string) {
    if (payloadBytes(input.payload) > MAX_PAYLOAD_BYTES) return err("payload_too_large", "payload exceeds 256 KiB");
    const requestHash = idempotencyKey
      ? createHash("sha256").update(canonicalJson({ tenant, ...input })).digest("hex")
      : null;
    const bad = storableProblem(input.payload) ?? (input.runAt && Number.isNaN(Date.parse(input.runAt)) ? "runAt is not a date" : null);
    if (bad) return err("invalid", bad);
    if (!idempotencyKey) {
      const row = await submitTogether(input.queue, { ...toNewJob(tenant, input), id: uuidv7(Date.now()) });
      announce(row);
      return ok(row);
    }
    // Keyed: a second insert after a lost one finds the first (ON CONFLICT DO NOTHING, then the read below).
    const row = await retryIfLost(() => jobs.insert(toNewJob(tenant, input, { idempotencyKey, requestHash })), true);
    if (row) {
      announce(row);
      return ok(row);
    }
    // ON CONFLICT DO NOTHING waited for the winner to commit, so it is visible now.
    const winner = await jobs.findByIdempotencyKey(tenant, idempotencyKey!);
    if (!winner) return err("not_found", "the job for this idempotency key was removed; retry");
    if (winner.requestHash !== requestHash)
      return err("idempotency_mismatch", "this Idempotency-Key was used with a different request body");
    return ok(winner, true);
  }

  async function get(id: string, scope: TenantScope) {
    const row = await retryIfLost(() => jobs.findById(id, scope), true);
    return row ? ok(row) : err("not_found");
  }

  /** After a guarded write changed nothing, one read decides which loss it was. */
  async function explainLoss(id: string, scope: TenantScope, version?: number) {
    const row = await jobs.findById(id, scope);
    if (!row) return { row: null, error: err("not_found") };
    if (version !== undefined && row.version !== version)
      return { row, error: err("version_mismatch", `current version is ${row.version}`) };
    return { row, error: null };
  }

  async function cancel(id: string, scope: TenantScope, version?: number) {
    // A concurrent claim or retry can move the job between the two guarded
    // writes; each pass is atomic, so a few passes always settle.
    for (let pass = 0; pass < 5; pass++) {
      const cancelled = await jobs.cancelIfQueued(id, scope, version);
      if (cancelled) {
        countWin("queued", [cancelled]);
        return ok(cancelled);
      }
      const requested = await jobs.requestCancelIfRunning(id, scope, version);
      if (requested) return ok(requested);
      const { row, error } = await explainLoss(id, scope, version);
      if (error) return error;
      if (isTerminal(row!.status)) {
        lost("cancel");
        return err("terminal", `job is ${row!.status}`);
      }
    }
    return err("terminal", "job kept changing state; retry");
  }

  // Held jobs (submitted, or retried, with a runAt well ahead) enter the claim index when
  // due. Whichever process claims does it before its claim, at most every PROMOTE_EVERY_MS,
  // and again whenever a claim comes back empty, so a job that just became due is taken by
  // the next poll. One promotion at a time per process.
  let promotedAt = 0;
  let current: Promise<Set<string>> | null = null;
  let next: Promise<Set<string>> | null = null;
  async function promotion(): Promise<Set<string>> {
    const queues = new Set<string>();
    for (let round = 0; round < 10; round++) {
      const r = await inTx(deps.sql, (tx) => jobs.promoteDue(PROMOTE_MAX_ROWS, tx));
      countStatement("promote", r.queues);
      for (const q of r.queues) {
        queues.add(q);
        notifier.notify(q);
      }
      if (r.promoted < PROMOTE_MAX_ROWS) break;
    }
    promotedAt = Date.now();
    return queues;
  }
  /**
   * The queues that gained claimable jobs. `always` (after an empty claim): a promotion
   * already running may have read the held jobs before this caller's fell due, so the
   * caller joins the one that starts after it (one, shared by everyone who arrives
   * meanwhile). Otherwise at most every PROMOTE_EVERY_MS, and not while one runs.
   */
  function promoteIfDue(always = false): Promise<Set<string>> {
    if (!always && (current || Date.now() - promotedAt < PROMOTE_EVERY_MS)) return Promise.resolve(new Set());
    if (!current) {
      current = promotion().finally(() => {
        current = null;
      });
      return current;
    }
    next ??= current
      .catch(() => {})
      .then(() => {
        next = null;
        return promoteIfDue(true);
      });
    return next;
  }

  const claimKey = (f: ClaimInput): ClaimKey => ({ queues: f.queues, kinds: f.kinds, tenant: f.scope, leaseSeconds: f.leaseSeconds });
  type ClaimInput = {
    queues: string[];
    kinds?: string[] | undefined;
    scope: TenantScope;
    workerId: string;
    leaseSeconds: number;
    max: number;
    waitMs: number;
    signal?: Cancel | undefined;
    /** false: a caller that batches by itself (createWorker) runs its own statement. */
    shared?: boolean | undefined;
  };
  /**
   * `first`: the claim already made by the statement that acknowledged this poll's jobs
   * (pollTogether), with the notifier mark taken before it; it stands for the loop's first claim.
   */
  async function claimNext(f: ClaimInput, first?: { rows: JobRow[]; since: number }) {
    const deadline = Date.now() + f.waitMs;
    // One immediate retry per call when an empty claim's promotion fed one of this poll's
    // queues; after that the promotion's NOTIFY wakes the wait below, and promotions after
    // an empty claim keep to the usual rate. Jobs of other queues falling due, or promoted
    // jobs this poll cannot take (another kind or tenant), must not keep a poll spinning,
    // nor have its own NOTIFYs wake it to promote again and again.
    let retriedAfterPromotion = false;
    const interest = { queues: f.queues, kinds: f.kinds, tenant: f.scope };
    // The announcement that woke this poll: one waiting poll wakes per job, so a poll that
    // leaves without having claimed hands it on (passOn), or the job would wait for a re-check.
    let woke: Announcement | null = null;
    let waited = false;
    const handOn = () => {
      if (woke) notifier.passOn(woke);
      woke = null;
    };
    for (;;) {
      // A poll whose client went away while it waited must not lease anything.
      if (f.signal?.aborted && !first) {
        handOn();
        metrics.claims.inc({ outcome: "empty" });
        return [];
      }
      let since: number;
      let rows: JobRow[];
      if (first) {
        ({ rows, since } = first);
        first = undefined;
      } else {
        try {
          await promoteIfDue();
          // Before the claim: a job committed after its snapshot is announced after this mark.
          since = notifier.mark();
          rows =
            f.shared === false
              ? countStatement("claim", await jobs.claimNext({ ...f, tenant: f.scope }))
              : await claimTogether(claimKey(f), { workerId: f.workerId, max: f.max, signal: f.signal });
        } catch (e) {
          handOn();
          throw e;
        }
        if (waited) metrics.pollWakes.inc({ by: woke ? "announcement" : "recheck", outcome: rows.length > 0 ? "found" : "empty" });
        // Left while its claim was queued: it took nothing.
        if (rows.length === 0 && f.signal?.aborted) handOn();
        woke = null;
      }
      if (rows.length > 0) {
        metrics.claims.inc({ outcome: "claimed" }, rows.length);
        countWin("queued", rows);
        return rows;
      }
      const promoted = await promoteIfDue(!retriedAfterPromotion);
      if (!retriedAfterPromotion && f.queues.some((q) => promoted.has(q))) {
        retriedAfterPromotion = true;
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0 || f.signal?.aborted || notifier.closed) {
        metrics.claims.inc({ outcome: "empty" });
        return rows;
      }
      // Woken by NOTIFY; the 1 s cap also catches jobs whose runAt just arrived.
      woke = await notifier.wait(interest, Math.min(left, 1000), f.signal, since);
      waited = true;
    }
  }

  async function claim(id: string, scope: TenantScope, a: { workerId: string; leaseSeconds: number; version?: number | undefined }) {
    const row = await jobs.claimIfQueued(id, { ...a, tenant: scope });
    if (row) {
      metrics.claims.inc({ outcome: "claimed" });
      countWin("queued", [row]);
      return ok(row);
    }
    const { row: cur, error } = await explainLoss(id, scope, a.version);
    if (error) return error;
    metrics.claims.inc({ outcome: "lost_race" });
    if (cur!.status !== "queued") return err("not_queued", `job is ${cur!.status}`);
    return err("not_claimable", "job is scheduled for later or its batch is still preparing");
  }

  async function heartbeat(id: string, scope: TenantScope, leaseToken: string, leaseSeconds: number) {
    // Extending a lease twice is extending it once.
    const row = await retryIfLost(() => jobs.heartbeatIfLeased(id, leaseToken, leaseSeconds, scope), true);
    if (row) return ok(row);
    const { error } = await explainLoss(id, scope);
    lost("heartbeat");
    return error ?? err("lease_lost", "the lease expired or belongs to another worker");
  }

  async function complete(id: string, scope: TenantScope, leaseToken: string, result: unknown, q?: Queryable) {
    const bad = resultRefusal(result);
    if (bad) return bad;
    const row =
      q === undefined
        ? (await completeTogether(scope, [{ id, leaseToken, result }]))[0]!
        : await jobs.completeIfLeased(id, leaseToken, result, scope, q);
    if (row === REFUSED) return refusedProblem();
    if (row) {
      countWin("running", [row]);
      return ok(row);
    }
    return explainComplete(id, scope, leaseToken);
  }

  async function explainComplete(id: string, scope: TenantScope, leaseToken: string) {
    const { row: cur, error } = await explainLoss(id, scope);
    if (error) return error;
    // The same call repeated by the lease holder: same job, no second transition.
    if (cur!.status === "succeeded" && sameUuid(cur!.leaseToken, leaseToken)) return ok(cur!, true);
    lost("complete");
    return cur!.status === "running"
      ? err("lease_lost", "the lease expired or belongs to another worker")
      : err("not_running", `job is ${cur!.status}`);
  }

  /**
   * Items answered one by one. An unstorable result is refused on its own: it
   * must not fail a statement shared with others. The ones that lost are
   * explained one by one (a replay, a lost lease, an unknown id).
   */
  async function settle<R extends DoneRow>(
    scope: TenantScope,
    items: Array<{ id: string; leaseToken: string; result?: unknown }>,
    complete: (items: CompleteItem[]) => Promise<Array<R | null | typeof REFUSED>>,
    /** Each result's refusal; a caller that checked them already passes nulls. */
    problems: Array<ReturnType<typeof resultRefusal>> = items.map((i) => resultRefusal(i.result)),
  ) {
    const rows = await complete(items.filter((_, k) => problems[k] === null).map((i) => ({ ...i, result: i.result ?? null })));
    countWin(
      "running",
      rows.filter((r): r is R => r !== null && r !== REFUSED),
    );
    const out = [];
    let g = 0;
    for (const [k, i] of items.entries()) {
      const problem = problems[k];
      if (problem) {
        out.push({ id: i.id, outcome: problem });
        continue;
      }
      const r = rows[g++];
      if (r === REFUSED) out.push({ id: i.id, outcome: refusedProblem() });
      else out.push(r ? { id: i.id, outcome: ok(r) } : { id: i.id, outcome: await explainComplete(i.id, scope, i.leaseToken) });
    }
    return out;
  }

  /** The batch acknowledgement (HTTP): shares statements with concurrent completes, full rows back. */
  const completeMany = (scope: TenantScope, items: Array<{ id: string; leaseToken: string; result?: unknown }>) =>
    settle(scope, items, (good) => completeTogether(scope, good));

  /**
   * A poll that also acknowledges finished jobs (process-next's `complete`). The
   * acknowledgements and the poll's first claim are one statement (pollTogether), shared with
   * other such polls: a job being completed is running, never claimable, so they touch
   * different rows, and the poll waits for one round trip instead of two. When that claim
   * finds nothing, the poll waits as any other does.
   * A statement that fails did neither: the completions are answered on their own items (503
   * when the database is away or rolled it back, else 500; replaying a complete is safe either
   * way) and the poll ends at once, so the worker learns it while its leases last.
   * `failure` is the error, for the caller to log.
   */
  async function claimNextAndComplete(f: ClaimInput, acks: Array<{ id: string; leaseToken: string; result?: unknown }>) {
    if (acks.length === 0) return { jobs: await claimNext(f), completed: [], failure: undefined };
    let failure: { error: unknown; expected: boolean } | undefined;
    let first: { rows: JobRow[]; since: number } | undefined;
    const completed = await settle(f.scope, acks, async (good) => {
      if (good.length === 0) return [];
      await promoteIfDue();
      const since = notifier.mark();
      const r = await pollTogether(claimKey(f), { acks: good, taker: { workerId: f.workerId, max: f.max, signal: f.signal } });
      first = { rows: r.claimed, since };
      return r.answers;
    }).catch((error: unknown) => {
      const expected = isDbUnavailable(error) || isConflictVictim(error);
      failure = { error, expected };
      const outcome = err(expected ? "unavailable" : "internal", "may not have been acknowledged; send it again");
      return acks.map((a) => ({ id: a.id, outcome }));
    });
    // Failed after the statement (explaining a lost item): the jobs it claimed are this worker's.
    if (failure) return { jobs: first?.rows ?? [], completed, failure };
    return { jobs: await claimNext(f, first), completed, failure };
  }

  /**
   * createWorker's acknowledgement: it batches by itself, so its own statement, with lean rows
   * back. Its results must have passed resultRefusal already (createWorker fails a job whose
   * result does not), so they are not serialised once more here.
   */
  const completeOwn = (scope: TenantScope, items: Array<{ id: string; leaseToken: string; result?: unknown }>) =>
    settle(
      scope,
      items,
      async (good) => matchWinners([good], await retryIfLost(() => jobs.completeManyIfLeased(good, scope, undefined, true), true))[0]!,
      items.map(() => null),
    );

  async function fail(
    id: string,
    scope: TenantScope,
    a: { leaseToken: string; error: { message: string; code?: string | undefined }; retryable: boolean; retryAfterSeconds?: number | undefined },
  ) {
    // A fail that requeued its job cannot be told from a lost lease on a second run: only when nothing ran.
    const jitter = random();
    const row = await retryIfLost(
      () =>
        jobs.failIfLeased(id, {
          ...a,
          backoffBaseMs: deps.config.JOBLINE_BACKOFF_BASE_MS,
          backoffMaxMs: deps.config.JOBLINE_BACKOFF_MAX_MS,
          jitter,
          tenant: scope,
        }),
      false,
    );
    if (row) {
      countWin("running", [row]);
      // Due by the database's clock (run_at and updated_at come from the same statement's now()),
      // not this process's: with the two apart, a retry that is due would go unannounced.
      if (row.status === "queued" && row.runAt.getTime() <= row.updatedAt.getTime())
        notifier.notify(row.queue, { kind: row.kind, tenant: row.tenant });
      return ok(row);
    }
    const { row: cur, error } = await explainLoss(id, scope);
    if (error) return error;
    // A replay is the holder's own call again: same token and same error. After the reaper
    // finished the job (it keeps the token), a late fail is a lost race, not a replay.
    const sameCall = sameUuid(cur!.leaseToken, a.leaseToken) && canonicalJson(cur!.lastError) === canonicalJson(a.error);
    if ((cur!.status === "failed" || cur!.status === "cancelled") && sameCall)
      return ok(cur!, true);
    lost("fail");
    return cur!.status === "running"
      ? err("lease_lost", "the lease expired or belongs to another worker")
      : err("not_running", `job is ${cur!.status}`);
  }

  return {
    submit,
    get,
    list: jobs.list,
    cancel,
    claimNext,
    claimNextAndComplete,
    claim,
    heartbeat,
    complete,
    completeMany,
    completeOwn,
    fail,
    newLeaseId: randomUUID,
  };
}

export type JobService = ReturnType<typeof createJobService>;
