import type { Sql } from "../../db/client.js";
import { inTx } from "../../db/tx.js";
import type { JobStatus } from "../../domain/jobs.js";
import type { Metrics } from "../../metrics.js";
import type { JobsRepository } from "../../repositories/jobs.js";
import type { ClaimedRow, ClaimFields, WorkerRow } from "../../repositories/jobs/rows.js";
import type { Announcement, Notifier } from "../notifier.js";
import type { Cancel } from "../tripwire.js";
import type { TenantScope } from "./input.js";
import { type ClaimKey, countStatement, type SharedStatements } from "./sharedStatements.js";

/** How often a claiming process looks for held jobs that are due, and how many it tags per statement. */
export const PROMOTE_EVERY_MS = 250;
const PROMOTE_MAX_ROWS = 1000;

export type ClaimInput = {
  queues: string[];
  kinds?: string[] | undefined;
  scope: TenantScope;
  workerId: string;
  leaseSeconds: number;
  max: number;
  waitMs: number;
  signal?: Cancel | undefined;
  /** The columns the claim returns: worker rows for a caller that reads only the worker fields. */
  fields?: ClaimFields | undefined;
  /** false: a caller that batches by itself (createWorker) runs its own statement. */
  shared?: boolean | undefined;
};

export const claimKey = (f: ClaimInput): ClaimKey => ({ queues: f.queues, kinds: f.kinds, tenant: f.scope, leaseSeconds: f.leaseSeconds, fields: f.fields });

/**
 * Held jobs (submitted, or retried, with a runAt well ahead) enter the claim index when
 * due. Whichever process claims does it before its claim, at most every PROMOTE_EVERY_MS,
 * and again whenever a claim comes back empty, so a job that just became due is taken by
 * the next poll. One promotion at a time per process.
 */
export function createPromoter(sql: Sql, jobs: JobsRepository, notifier: Notifier, metrics: Metrics) {
  let promotedAt = 0;
  let current: Promise<Set<string>> | null = null;
  let next: Promise<Set<string>> | null = null;
  async function promotion(): Promise<Set<string>> {
    const queues = new Set<string>();
    for (let round = 0; round < 10; round++) {
      const r = await inTx(sql, (tx) => jobs.promoteDue(PROMOTE_MAX_ROWS, tx));
      countStatement(metrics, "promote", r.queues);
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
   * meanwhile), and also counts the running one's queues: a later round of it may take
   * the caller's job. Otherwise at most every PROMOTE_EVERY_MS, and not while one runs.
   */
  function promoteIfDue(always = false): Promise<Set<string>> {
    if (!always && (current || Date.now() - promotedAt < PROMOTE_EVERY_MS)) return Promise.resolve(new Set());
    if (!current) {
      current = promotion().finally(() => {
        current = null;
      });
      return current;
    }
    const running = current.catch(() => new Set<string>());
    next ??= running.then(() => {
      next = null;
      return promoteIfDue(true);
    });
    return Promise.all([running, next]).then(([a, b]) => new Set([...a, ...b]));
  }
  return promoteIfDue;
}

type LongPollDeps = {
  notifier: Notifier;
  metrics: Metrics;
  shared: SharedStatements;
  promoteIfDue: (always?: boolean) => Promise<Set<string>>;
  countWin: (from: JobStatus, rows: Array<{ status: JobStatus }>) => void;
};

/**
 * The long poll: claim, and when nothing was claimable wait for a NOTIFY (or the 1 s cap)
 * until the caller's deadline. `first`: the claim already made by the statement that
 * acknowledged this poll's jobs (pollTogether), with the notifier mark taken before it; it
 * stands for the loop's first claim.
 */
export function createLongPoll(deps: LongPollDeps) {
  const { notifier, metrics, shared, promoteIfDue, countWin } = deps;
  async function claimAny(f: ClaimInput, first?: { rows: WorkerRow[]; since: number }): Promise<WorkerRow[]> {
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
      let rows: WorkerRow[];
      if (first) {
        ({ rows, since } = first);
        first = undefined;
      } else {
        try {
          await promoteIfDue();
          // Before the claim: a job committed after its snapshot is announced after this mark.
          since = notifier.mark();
          // Stopped during the promotion: a claim now could lease a job submitted after the stop.
          rows = f.signal?.aborted
            ? []
            : f.shared === false
              ? (await shared.claimRouted(claimKey(f), [{ workerId: f.workerId, max: f.max }]))[0]!
              : await shared.claimTogether(claimKey(f), { workerId: f.workerId, max: f.max, signal: f.signal });
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
  // Full rows unless the caller asked for worker rows: `fields` chose the claim's columns (claim.ts).
  return <F extends ClaimFields | undefined = undefined>(f: ClaimInput & { fields?: F }, first?: { rows: WorkerRow[]; since: number }) =>
    claimAny(f, first) as Promise<ClaimedRow<F>[]>;
}
