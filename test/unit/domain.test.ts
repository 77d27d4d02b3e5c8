import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  BATCH_OUTCOME_RULES,
  BATCH_STATUSES,
  BATCH_TRANSITIONS,
  type BatchOutcomeCondition,
  isBatchTerminal,
} from "../../src/domain/batches.js";
import { isTerminal, JOB_STATUSES, JOB_TRANSITIONS, type JobStatus, type JobTransition } from "../../src/domain/jobs.js";

// The contract's tables, as docs/state-machine.md copies them from DESIGN.md: the code's
// tables are checked against that text, not against a copy of themselves.
const doc = readFileSync(new URL("../../docs/state-machine.md", import.meta.url), "utf8");
const jobSection = doc.slice(doc.indexOf("## Jobs"), doc.indexOf("## Batches"));
const batchSection = doc.slice(doc.indexOf("## Batches"));

/** The table's rows: each from status × each to status, with the "by" text. "—" (terminal) has no edge. */
const designRows = jobSection
  .split("\n")
  .filter((l) => /^\| [a-z]/.test(l) && !l.startsWith("| from"))
  .map((l) => l.split("|").slice(1, -1).map((c) => c.trim()) as [string, string, string]);
const designEdges = designRows.flatMap(([from, to, by]) =>
  to === "—" ? [] : from.split(",").map((f) => ({ edge: `${f.trim()}>${to}`, by })),
);
const codeEdges = (t: JobTransition) => JOB_TRANSITIONS[t].from.flatMap((f) => JOB_TRANSITIONS[t].to.map((to) => `${f}>${to}`));
/** How the DESIGN table's "by" column names each transition of the code. */
const WORDING: Record<JobTransition, string | null> = {
  claim: "claim",
  cancel: "cancel",
  // The contract's "Time limits" section: an expired queued job ends cancelled, the cancel edge.
  expire: "cancel",
  // A cancel request leaves the job running: the table lists no edge of its own for it.
  requestCancel: null,
  heartbeat: "heartbeat",
  complete: "complete",
  fail: "fail",
  reap: "reaper",
  // Gives back an attempt whose poll answer never reached its client: the contract's table does
  // not name it (its edge, running → queued, is the table's), and it is fenced by the lease.
  release: null,
  batchRetry: "batch retry",
  retry: "job retry",
  resolve: "dependency resolution",
};
/** Transitions the contract does not name; the fencing rule below is checked without them. */
const INTERNAL: JobTransition[] = ["release"];

describe("job state machine", () => {
  it("parses the DESIGN table it checks against", () => {
    expect(designEdges.length).toBeGreaterThanOrEqual(9);
  });

  it("has exactly the edges of the DESIGN table, nothing else", () => {
    const code = new Set((Object.keys(JOB_TRANSITIONS) as JobTransition[]).flatMap(codeEdges));
    expect([...code].sort()).toEqual([...new Set(designEdges.map((e) => e.edge))].sort());
  });

  it("each transition's edges are rows of the table that name it", () => {
    for (const t of Object.keys(JOB_TRANSITIONS) as JobTransition[]) {
      const word = WORDING[t];
      for (const e of codeEdges(t)) {
        const rows = designEdges.filter((d) => d.edge === e);
        expect(rows.length, `${t}: ${e}`).toBeGreaterThan(0);
        if (word !== null) expect(rows.some((r) => r.by.includes(word)), `${t}: ${e} by "${word}"`).toBe(true);
      }
    }
  });

  it("fences by lease exactly the transitions the contract names (complete, fail, heartbeat)", () => {
    const rule = jobSection.match(/cannot ([a-z, ]+) it \(409\)/);
    expect(rule).not.toBeNull();
    const fenced = rule![1]!.split(/,\s*|\s+or\s+/).filter(Boolean).sort();
    const code = (Object.keys(JOB_TRANSITIONS) as JobTransition[])
      .filter((t) => JOB_TRANSITIONS[t].fencedByLease && !INTERNAL.includes(t))
      .sort();
    expect(code).toEqual(fenced);
  });

  it("terminal statuses are the table's sinks and the sources of retry only", () => {
    const out = (s: JobStatus) => (Object.keys(JOB_TRANSITIONS) as JobTransition[]).filter((t) => JOB_TRANSITIONS[t].from.includes(s));
    expect(out("succeeded")).toEqual([]);
    expect(out("failed")).toEqual(["batchRetry", "retry"]);
    expect(out("cancelled")).toEqual(["batchRetry", "retry"]);
    expect(JOB_STATUSES.filter(isTerminal).sort()).toEqual(["cancelled", "failed", "succeeded"]);
  });
});

describe("batch state machine", () => {
  const edges = new Set<string>();
  for (const r of Object.values(BATCH_TRANSITIONS))
    for (const f of r.from) for (const t of r.to === "unchanged" ? [f] : r.to) edges.add(`${f}>${t}`);
  // The doc's batch table: comma lists on both sides, "(unchanged)" an edge from a status to itself.
  const docEdges = batchSection
    .split("\n")
    .filter((l) => /^\| [a-z]/.test(l) && !l.startsWith("| from"))
    .flatMap((l) => {
      const [from, to] = l.split("|").slice(1, 3).map((c) => c.trim().split(/,\s*/)) as [string[], string[]];
      return from.flatMap((f) => (to[0] === "(unchanged)" ? [f] : to).map((t) => `${f}>${t}`));
    });

  it("has exactly the edges of the doc's batch table, nothing else", () => {
    expect(docEdges.length).toBeGreaterThanOrEqual(10);
    expect([...edges].sort()).toEqual([...new Set(docEdges)].sort());
  });

  it("contains every edge of the contract's lifecycle, seal, retry and adds", () => {
    // "`preparing` → `pending` → `running` → `succeeded` | `failed` | …": each step's statuses.
    const chain = batchSection.slice(batchSection.indexOf("A batch groups jobs:"), batchSection.indexOf(". Created"));
    const steps = chain
      .split("→")
      .map((s) => [...s.matchAll(/`([a-z_]+)`/g)].map((m) => m[1]!));
    expect(steps.length).toBe(4);
    for (let i = 1; i < steps.length; i++) for (const f of steps[i - 1]!) for (const t of steps[i]!) expect(edges.has(`${f}>${t}`), `${f}>${t}`).toBe(true);
    expect(batchSection).toContain("moves the batch back to `pending`");
    for (const s of ["failed", "partially_succeeded", "cancelled"]) expect(edges.has(`${s}>pending`), `${s}>pending`).toBe(true);
    expect(batchSection).toContain("stays `preparing` while\njobs are added");
    expect(edges.has("preparing>preparing")).toBe(true);
  });

  it("never leaves succeeded, and never enters preparing from elsewhere", () => {
    for (const e of edges) {
      expect(e.startsWith("succeeded>"), e).toBe(false);
      if (e.endsWith(">preparing")) expect(e).toBe("preparing>preparing");
    }
    expect(BATCH_STATUSES.filter(isBatchTerminal).sort()).toEqual(["cancelled", "failed", "partially_succeeded", "succeeded"]);
  });

  it("BATCH_OUTCOME_RULES map final counts to a terminal status, a cancel request first (as the SQL)", () => {
    expect(BATCH_OUTCOME_RULES[0].when).toBe("cancelRequested");
    expect(BATCH_OUTCOME_RULES.at(-1)!.when).toBe("otherwise");
    for (const r of BATCH_OUTCOME_RULES) expect(isBatchTerminal(r.status), r.when).toBe(true);
    // The rules read in order, the first that holds wins (finalise.ts writes them as one CASE).
    const outcome = (c: { cancelRequested?: boolean; succeeded: number; failed: number; cancelled: number }) => {
      const total = c.succeeded + c.failed + c.cancelled;
      const holds: Record<BatchOutcomeCondition, boolean> = {
        cancelRequested: c.cancelRequested === true,
        allSucceeded: c.succeeded === total,
        someSucceeded: c.succeeded > 0,
        someFailed: c.failed > 0,
        otherwise: true,
      };
      return BATCH_OUTCOME_RULES.find((r) => holds[r.when])!.status;
    };
    expect(outcome({ succeeded: 3, failed: 0, cancelled: 0 })).toBe("succeeded");
    expect(outcome({ succeeded: 0, failed: 0, cancelled: 3 })).toBe("cancelled");
    expect(outcome({ succeeded: 0, failed: 2, cancelled: 1 })).toBe("failed");
    expect(outcome({ succeeded: 1, failed: 1, cancelled: 0 })).toBe("partially_succeeded");
    expect(outcome({ succeeded: 1, failed: 0, cancelled: 1 })).toBe("partially_succeeded");
    expect(outcome({ cancelRequested: true, succeeded: 3, failed: 0, cancelled: 0 })).toBe("cancelled");
    expect(outcome({ cancelRequested: true, succeeded: 1, failed: 1, cancelled: 1 })).toBe("cancelled");
  });
});
