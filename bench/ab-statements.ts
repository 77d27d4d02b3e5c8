// Statement-level A/B between two checkouts: each tree's own claim of 2,000 jobs and lean completion
// of 2,000, on its own database of one server, alternated. CONCURRENT=1 runs each claim beside the
// completion of the previous claim's jobs (as the in-process worker does).
// `npx tsx bench/ab-statements.ts TREE_A TREE_B [rounds=8]` (run from either tree).
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

type Row = { id: string; leaseToken: string };
// Each tree's own repository, loaded at run time: only the two statements measured are typed.
type Repo = {
  claimNext: (f: object) => Promise<Row[]>;
  completeManyIfLeased: (items: object[], tenant: string, q: undefined, lean: boolean) => Promise<unknown>;
};
type Tree = { name: string; repo: Repo; sql: { end: () => Promise<void> }; claim: number[]; complete: number[] };
const trees = process.argv.slice(2, 4);
const rounds = Number(process.argv[4] ?? 8);
const concurrent = process.env.CONCURRENT === "1";
const N = 2000;
const { startEmbeddedPostgres } = await import(`${trees[0]}/src/db/embedded.ts`);
const dataDir = mkdtempSync(join(tmpdir(), "ab-stmt-"));
const server = await startEmbeddedPostgres({ dataDir, persistent: false });
const ts: Tree[] = [];

async function open(tree: string, i: number): Promise<Tree> {
  const { migrate } = await import(`${tree}/src/db/migrate.ts`);
  const { seedJobs } = await import(`${tree}/bench/jobline.ts`);
  const { jobsRepository } = await import(`${tree}/src/repositories/jobs.ts`);
  const { camelColumns } = await import(`${tree}/src/db/client.ts`);
  const postgres = (await import(`${tree}/node_modules/postgres/src/index.js`)).default;
  const admin = postgres(server.url(), { max: 1, onnotice: () => {} });
  await admin.unsafe(`CREATE DATABASE t${i}`);
  await admin.end();
  await migrate(server.url(`t${i}`));
  await seedJobs(server.url(`t${i}`), N * (rounds * 2 + 2), "bench");
  const sql = postgres(server.url(`t${i}`), { max: 2, transform: camelColumns, onnotice: () => {} });
  return { name: tree.split("/").pop()!, repo: jobsRepository(sql), sql, claim: [], complete: [] };
}

const f = { queues: ["bench"], kinds: null, tenant: "bench", workerId: "w", max: N, leaseSeconds: 30 };
const complete = (t: Tree, rows: Row[]) =>
  t.repo.completeManyIfLeased(rows.map((x) => ({ id: x.id, leaseToken: x.leaseToken, result: null })), "bench", undefined, true);

/** One round of one tree: [claim ms, completion ms] (concurrent: completion = both together). */
async function round(t: Tree, prev: Map<string, Row[]>): Promise<[number, number]> {
  const t0 = performance.now();
  if (!concurrent) {
    const rows: Row[] = await t.repo.claimNext(f);
    const c = performance.now() - t0;
    if (rows.length !== N) throw new Error(`${t.name}: claimed ${rows.length}`);
    const t1 = performance.now();
    await complete(t, rows);
    return [c, performance.now() - t1];
  }
  const before = prev.get(t.name) ?? (await t.repo.claimNext(f));
  const t2 = performance.now();
  let c = 0;
  const [rows] = await Promise.all([
    t.repo.claimNext(f).then((x: Row[]) => {
      c = performance.now() - t2;
      return x;
    }),
    complete(t, before),
  ]);
  if (rows.length !== N) throw new Error(`${t.name}: claimed ${rows.length}`);
  prev.set(t.name, rows);
  return [c, performance.now() - t2];
}

try {
  for (const [i, tree] of trees.entries()) ts.push(await open(tree, i));
  const prev = new Map<string, Row[]>();
  for (let r = 0; r < rounds * 2; r++) {
    for (const t of r % 2 ? [...ts].reverse() : ts) {
      const [c, d] = await round(t, prev);
      if (r === 0) continue;
      t.claim.push(c);
      t.complete.push(d);
    }
  }
  const at = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length * p)]!.toFixed(1);
  const second = concurrent ? "claim + completion together" : "completion";
  for (const t of ts)
    console.log(`${t.name}: claim median ${at(t.claim, 0.5)} p10 ${at(t.claim, 0.1)} ms; ${second} median ${at(t.complete, 0.5)} p10 ${at(t.complete, 0.1)} ms (per ${N})`);
} finally {
  for (const t of ts) await t.sql.end();
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
