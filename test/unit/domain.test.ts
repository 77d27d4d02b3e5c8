import { describe, expect, it } from "vitest";
import { BATCH_STATUSES, BATCH_TRANSITIONS, batchOutcome, isBatchTerminal } from "../../src/domain/batches.js";
import {
  canTransition,
  isTerminal,
  JOB_STATUSES,
  JOB_TRANSITIONS,
  type JobStatus,
  type JobTransition,
  legalEdges,
} from "../../src/domain/jobs.js";

/** The transition table of DESIGN.md, written out by hand: the code must agree with it edge for edge. */
const DESIGN_JOB_EDGES: Record<JobTransition, { from: JobStatus[]; to: JobStatus[]; fenced: boolean }> = {
  claim: { from: ["queued"], to: ["running"], fenced: false },
  cancel: { from: ["queued"], to: ["cancelled"], fenced: false },
  requestCancel: { from: ["running"], to: ["running"], fenced: false },
  heartbeat: { from: ["running"], to: ["running"], fenced: true },
  complete: { from: ["running"], to: ["succeeded"], fenced: true },
  fail: { from: ["running"], to: ["queued", "failed", "cancelled"], fenced: true },
  reap: { from: ["running"], to: ["queued", "failed", "cancelled"], fenced: false },
  release: { from: ["running"], to: ["queued"], fenced: true },
  batchRetry: { from: ["failed", "cancelled"], to: ["queued"], fenced: false },
};

const DESIGN_EDGE_SET = [
  "queued>running",
  "queued>cancelled",
  "running>running",
  "running>succeeded",
  "running>queued",
  "running>failed",
  "running>cancelled",
  "failed>queued",
  "cancelled>queued",
].sort();

const edgeKey = ([f, t]: [string, string]) => `${f}>${t}`;

describe("job state machine", () => {
  it("has exactly the edges of DESIGN.md, nothing else", () => {
    expect(legalEdges().map(edgeKey).sort()).toEqual(DESIGN_EDGE_SET);
  });

  it("has exactly the named transitions of DESIGN.md, each with its from/to sets and lease fencing", () => {
    expect(Object.keys(JOB_TRANSITIONS).sort()).toEqual(Object.keys(DESIGN_JOB_EDGES).sort());
    for (const [name, rule] of Object.entries(JOB_TRANSITIONS)) {
      const want = DESIGN_JOB_EDGES[name as JobTransition];
      expect([...rule.from].sort(), name).toEqual([...want.from].sort());
      expect([...rule.to].sort(), name).toEqual([...want.to].sort());
      expect(rule.fencedByLease, name).toBe(want.fenced);
    }
  });

  it("canTransition answers every (transition, from, to) triple as the table says", () => {
    for (const t of Object.keys(DESIGN_JOB_EDGES) as JobTransition[]) {
      for (const f of JOB_STATUSES) {
        for (const to of JOB_STATUSES) {
          const want = DESIGN_JOB_EDGES[t].from.includes(f) && DESIGN_JOB_EDGES[t].to.includes(to);
          expect(canTransition(t, f, to), `${t}: ${f} -> ${to}`).toBe(want);
        }
      }
    }
  });

  it("succeeded is a sink; failed and cancelled leave only through batch retry", () => {
    const out = (s: JobStatus) => legalEdges().filter(([f]) => f === s);
    expect(out("succeeded")).toEqual([]);
    for (const s of ["failed", "cancelled"] as const) {
      for (const t of Object.keys(JOB_TRANSITIONS) as JobTransition[]) {
        if (t !== "batchRetry") expect(JOB_TRANSITIONS[t].from.includes(s), `${t} from ${s}`).toBe(false);
      }
    }
    expect(JOB_STATUSES.filter(isTerminal).sort()).toEqual(["cancelled", "failed", "succeeded"]);
  });
});

describe("batch state machine", () => {
  const edges = new Set<string>();
  for (const r of Object.values(BATCH_TRANSITIONS)) for (const f of r.from) for (const t of r.to) edges.add(`${f}>${t}`);

  it("contains every edge DESIGN.md names", () => {
    const design = [
      "preparing>preparing", // add jobs
      "preparing>pending", // seal
      "pending>running", // first claim
      "running>succeeded",
      "running>failed",
      "running>partially_succeeded",
      "running>cancelled",
      "failed>pending", // retry
      "partially_succeeded>pending",
      "cancelled>pending",
    ];
    for (const e of design) expect(edges.has(e), e).toBe(true);
  });

  it("never leaves succeeded, and never enters preparing from elsewhere", () => {
    for (const e of edges) {
      expect(e.startsWith("succeeded>"), e).toBe(false);
      if (e.endsWith(">preparing")) expect(e).toBe("preparing>preparing");
    }
    expect(BATCH_STATUSES.filter(isBatchTerminal).sort()).toEqual(["cancelled", "failed", "partially_succeeded", "succeeded"]);
  });

  it("batchOutcome maps final counts to the terminal status", () => {
    expect(batchOutcome({ succeeded: 3, failed: 0, cancelled: 0 })).toBe("succeeded");
    expect(batchOutcome({ succeeded: 0, failed: 0, cancelled: 3 })).toBe("cancelled");
    expect(batchOutcome({ succeeded: 0, failed: 2, cancelled: 1 })).toBe("failed");
    expect(batchOutcome({ succeeded: 1, failed: 1, cancelled: 0 })).toBe("partially_succeeded");
    expect(batchOutcome({ succeeded: 1, failed: 0, cancelled: 1 })).toBe("partially_succeeded");
  });
});
