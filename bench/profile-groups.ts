// Groups a --cpu-prof profile's self time as the performance notes do: `npx tsx bench/profile-groups.ts FILE.cpuprofile [JOBS | API_US]`.
// With JOBS, each group is also printed in µs of the main thread's sampled time per job (sampled
// wall time: on a loaded machine, read the shares and scale them by the API's CPU per job from /proc).
// With `API_US=…` env (the API's CPU µs per job from /proc, as bench/http-cpu.ts prints it), the µs column is share × that instead.
import { readFileSync } from "node:fs";

interface Node {
  id: number;
  children?: number[];
  callFrame: { functionName: string; url: string; lineNumber: number };
}
const [file, jobsArg] = process.argv.slice(2);
if (!file) throw new Error("usage: profile-groups.ts FILE.cpuprofile [JOBS]");
const prof = JSON.parse(readFileSync(file, "utf8")) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };

/** First match wins: by frame URL (or name, for V8's own entries and builtins). */
const GROUPS: Array<[string, (f: Node["callFrame"]) => boolean]> = [
  ["idle", (f) => f.functionName === "(idle)"],
  ["GC", (f) => f.functionName === "(garbage collector)"],
  ["validation (zod / ajv)", (f) => /node_modules\/(zod|ajv|fastify-type-provider-zod|@fastify\/ajv-compiler)\//.test(f.url) || /\/http\/schemas\//.test(f.url)],
  ["row parsing (postgres.js)", (f) => /node_modules\/postgres\//.test(f.url) || /src\/db\/client/.test(f.url)],
  ["serialisation (DTO, JSON.stringify, fast-json-stringify)", (f) => f.functionName === "stringify" || /representation|fast-json-stringify|\/http\/serialize/.test(f.url)],
  ["JSON.parse of bodies", (f) => f.functionName === "parse" && f.url === ""],
  ["SQL building (repositories, services)", (f) => /\/src\/(repositories|services|domain)\//.test(f.url)],
  ["fastify (routing, hooks, reply)", (f) => /node_modules\/(fastify|find-my-way|avvio|@fastify\/(?!ajv))/.test(f.url)],
  ["jobline HTTP layer", (f) => /\/src\/http\//.test(f.url)],
  ["logging / metrics (pino, prom-client)", (f) => /node_modules\/(pino|prom-client|sonic-boom)|\/src\/metrics/.test(f.url)],
  ["node http / net / streams", (f) => /^node:/.test(f.url)],
  ["socket writes (native)", (f) => f.url === "" && /^(writeBuffer|writev|writeUtf8String|writeLatin1String)$/.test(f.functionName)],
  ["program (V8, native)", (f) => f.functionName === "(program)"],
];

// Start-up (module loading, compiling) is not the steady state: samples count from the first one
// inside a process-next handler on.
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const inRoute = (id: number | undefined): boolean =>
  id !== undefined && (/routes\/processNext/.test(byId.get(id)?.callFrame.url ?? "") || inRoute(parent.get(id)));
const from = Math.max(0, prof.samples.findIndex((id) => inRoute(id)));
// Modules some plugins load lazily, and static files they walk (glob), are start-up too, wherever they fall.
const loading = (id: number | undefined): boolean =>
  id !== undefined && (/^node:internal\/modules\/|node_modules\/glob\//.test(byId.get(id)?.callFrame.url ?? "") || loading(parent.get(id)));
const self = new Map<number, number>();
for (const [i, id] of prof.samples.entries()) if (i >= from && !loading(id)) self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
const sums = new Map<string, number>();
let busy = 0;
for (const n of prof.nodes) {
  const t = self.get(n.id) ?? 0;
  const g = GROUPS.find(([, m]) => m(n.callFrame))?.[0] ?? "other";
  sums.set(g, (sums.get(g) ?? 0) + t);
  if (g !== "idle") busy += t;
}
const apiUs = Number(process.env.API_US ?? 0);
const jobs = jobsArg ? Number(jobsArg) : 0;
const perJob = (t: number) => (apiUs ? (t / busy) * apiUs : jobs ? t / jobs : 0);
console.log(`busy ${(busy / 1000).toFixed(0)} ms${jobs ? `, ${(busy / jobs).toFixed(1)} µs/job sampled` : ""}${apiUs ? `; µs column: share × ${apiUs} µs/job` : ""}`);
for (const [g, t] of [...sums.entries()].filter(([g]) => g !== "idle").sort((a, b) => b[1] - a[1]))
  console.log(`${((t / busy) * 100).toFixed(1).padStart(5)} %  ${perJob(t) ? `${perJob(t).toFixed(1).padStart(6)} µs/job  ` : ""}${g}`);
if (process.env.OTHER) {
  const other = new Map<string, number>();
  for (const n of prof.nodes) {
    if (GROUPS.some(([, m]) => m(n.callFrame))) continue;
    const k = `${n.callFrame.functionName || "(anon)"} ${n.callFrame.url.replace(/.*node_modules\//, "")}`;
    other.set(k, (other.get(k) ?? 0) + (self.get(n.id) ?? 0));
  }
  for (const [k, t] of [...other.entries()].sort((a, b) => b[1] - a[1]).slice(0, 15)) console.log(`  ${((t / busy) * 100).toFixed(1)} % ${k}`);
}
