// Profiles `jobline serve` under the HTTP process-next workload: node --cpu-prof, then the top self-time frames.
import { spawn } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { freePort, startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { post, seedJobs } from "./jobline.js";

const N = Number(process.argv[2] ?? 5000);
const MAX = Number(process.argv[3] ?? 1);
const s = await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "jlp-")), persistent: false });
const admin = postgres(s.url(), { max: 1 });
await admin`CREATE DATABASE p`;
await admin.end();
await migrate(s.url("p"));
await seedJobs(s.url("p"), N);
const port = await freePort();
const profDir = mkdtempSync(join(tmpdir(), "prof-"));
const key = "profile_key_0123456789abcdef";
const child = spawn(process.execPath, ["--cpu-prof", `--cpu-prof-dir=${profDir}`, "bin/jobline.js", "serve"], {
  env: { ...process.env, DATABASE_URL: s.url("p"), PORT: String(port), JOBLINE_BOOTSTRAP_KEY: key, LOG_LEVEL: "warn" },
  stdio: "inherit",
});
const url = `http://127.0.0.1:${port}`;
while (!(await fetch(`${url}/readyz`).then((r) => r.ok).catch(() => false))) await new Promise((r) => setTimeout(r, 100));
const api = { url, key };
const t0 = performance.now();
let done = 0;
await Promise.all(Array.from({ length: 16 }, async (_, i) => {
  for (;;) {
    const { body: r } = await post<{ jobs: { id: string; leaseToken: string }[] }>(api, "/v1/process-next", { queues: ["bench"], workerId: `c${i}`, max: MAX });
    if (r.jobs.length === 0) return;
    if (MAX === 1) await post(api, `/v1/jobs/${r.jobs[0]!.id}/complete`, { leaseToken: r.jobs[0]!.leaseToken });
    else await post(api, "/v1/jobs/complete", { items: r.jobs.map((j) => ({ id: j.id, leaseToken: j.leaseToken })) });
    done += r.jobs.length;
  }
}));
console.log(`${Math.round(done / ((performance.now() - t0) / 1000))} jobs/s`);
child.kill("SIGINT");
await new Promise((r) => child.once("exit", r));
await s.stop();
const file = readdirSync(profDir).find((f) => f.endsWith(".cpuprofile"));
if (file) {
  const prof = JSON.parse(readFileSync(join(profDir, file), "utf8")) as { nodes: { id: number; callFrame: { functionName: string; url: string; lineNumber: number } }[]; samples: number[]; timeDeltas: number[] };
  const self = new Map<number, number>();
  for (const [i, id] of prof.samples.entries()) self.set(id, (self.get(id) ?? 0) + (prof.timeDeltas[i] ?? 0));
  const byFrame = new Map<string, number>();
  for (const n of prof.nodes) {
    const k = `${n.callFrame.functionName || "(anon)"} ${n.callFrame.url.replace(/.*node_modules\//, "nm:").replace(/.*\/work\/main\//, "")}:${n.callFrame.lineNumber}`;
    byFrame.set(k, (byFrame.get(k) ?? 0) + (self.get(n.id) ?? 0));
  }
  const total = [...byFrame.values()].reduce((a, b) => a + b, 0);
  for (const [k, v] of [...byFrame.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(((v / total) * 100).toFixed(1).padStart(5), k);
}
