// Submit → start for a waiting worker, as `npm run bench` measures it, with the slowest
// samples shown: `npx tsx bench/latency-outliers.ts [runs] [samples]`. A lost wake-up shows as
// a sample near 1,000 ms (the long poll's re-check), which a p99 of 200 samples can hide.
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import postgres from "postgres";
import { startEmbeddedPostgres } from "../src/db/embedded.js";
import { migrate } from "../src/db/migrate.js";
import { joblineLatency } from "./jobline.js";

const [runs, samples] = [Number(process.argv[2] ?? 5), Number(process.argv[3] ?? 200)];
const s = await startEmbeddedPostgres({ dataDir: mkdtempSync(join(tmpdir(), "jll-")), persistent: false });
try {
  for (let i = 0; i < runs; i++) {
    const admin = postgres(s.url(), { max: 1, onnotice: () => {} });
    await admin.unsafe(`CREATE DATABASE lat${i}`);
    await admin.end();
    await migrate(s.url(`lat${i}`));
    const ms = (await joblineLatency(s.url(`lat${i}`), { samples })).sort((a, b) => a - b);
    const at = (q: number) => ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!.toFixed(2);
    console.log(`run ${i + 1}: p50 ${at(0.5)} ms, p99 ${at(0.99)} ms, slowest ${ms.slice(-5).map((x) => x.toFixed(1)).join(", ")} ms`);
  }
} finally {
  await s.stop();
}
