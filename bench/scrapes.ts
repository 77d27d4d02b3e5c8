// What /metrics scrapes cost submits: `npx tsx bench/scrapes.ts`
// Submit latency (p50, p99) of SUBMITTERS concurrent clients with and without SCRAPERS concurrent
// /metrics loops (each waits SCRAPE_INTERVAL_MS between scrapes; 0: back to back), against a
// `jobline serve` process on a table of JOBS retained jobs.
// BENCH_ROOT=<a checkout> runs that checkout's server instead (e.g. the commit before the sampler).
import { spawn } from "node:child_process";
import { dirname, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { Pool } from "undici";
import { freePort } from "../src/db/embedded.js";
import { createDatabase, percentile, progress, sleep, startBenchPostgres } from "./lib.js";

const JOBS = Number(process.env.JOBS ?? 13_000);
const SUBMITTERS = Number(process.env.SUBMITTERS ?? 4);
const SCRAPERS = Number(process.env.SCRAPERS ?? 20);
const SECONDS = Number(process.env.SECONDS ?? 10);
const INTERVAL = Number(process.env.SCRAPE_INTERVAL_MS ?? 0);
const root = process.env.BENCH_ROOT ?? resolve(dirname(fileURLToPath(import.meta.url)), "..");
const KEY = "bench-scrapes-bootstrap-key-0123456789";

const pg = await startBenchPostgres();
let server: ReturnType<typeof spawn> | null = null;
try {
  await createDatabase(pg.url(), "scrapes");
  const port = await freePort();
  server = spawn(process.execPath, ["bin/jobline.js", "serve"], {
    cwd: root,
    env: { ...process.env, DATABASE_URL: pg.url("scrapes"), PORT: String(port), HOST: "127.0.0.1", JOBLINE_BOOTSTRAP_KEY: KEY, LOG_LEVEL: "warn" },
    stdio: ["ignore", "ignore", "inherit"],
  });
  const base = `http://127.0.0.1:${port}`;
  const pool = new Pool(base, { connections: SUBMITTERS + SCRAPERS + 2 });
  for (let i = 0; ; i++) {
    const ok = await pool.request({ method: "GET", path: "/readyz" }).then(
      async (r) => {
        await r.body.dump();
        return r.statusCode === 200;
      },
      () => false,
    );
    if (ok) break;
    if (i > 300) throw new Error("the server did not become ready");
    await sleep(100);
  }
  const sql = postgres(pg.url("scrapes"), { max: 1, onnotice: () => {} });
  await sql`INSERT INTO jobs (tenant, queue, kind, payload, status, finished_at, fair_tag)
    SELECT 't' || (n % 5), 'q' || (n % 10), 'k', '{}', 'succeeded', now(), n FROM generate_series(1, ${JOBS}) n`;
  await sql`VACUUM ANALYZE jobs`;
  await sql.end();
  progress(`${JOBS} jobs retained; server ${root}`);

  const auth = { authorization: `Bearer ${KEY}`, "content-type": "application/json" };
  const body = JSON.stringify({ queue: "bench", kind: "k", payload: { n: 1 } });
  const phase = async (scrapers: number) => {
    const until = Date.now() + SECONDS * 1000;
    const latencies: number[] = [];
    let scrapes = 0;
    let failed = 0;
    const submitter = async () => {
      while (Date.now() < until) {
        const t0 = performance.now();
        const r = await pool.request({ method: "POST", path: "/v1/jobs", headers: auth, body });
        await r.body.dump();
        if (r.statusCode !== 201) throw new Error(`submit answered ${r.statusCode}`);
        latencies.push(performance.now() - t0);
      }
    };
    const scraper = async () => {
      while (Date.now() < until) {
        const r = await pool.request({ method: "GET", path: "/metrics" });
        await r.body.text();
        if (r.statusCode === 200) scrapes++;
        else failed++;
        if (INTERVAL > 0) await sleep(INTERVAL);
      }
    };
    await Promise.all([...Array.from({ length: SUBMITTERS }, submitter), ...Array.from({ length: scrapers }, scraper)]);
    const ms = (p: number) => percentile(latencies, p).toFixed(1);
    const also = scrapers ? `, ${(scrapes / SECONDS).toFixed(0)} scrapes/s${failed ? ` (${failed} failed)` : ""}` : "";
    console.log(
      `submit p50 ${ms(50)} ms, p99 ${ms(99)} ms (${latencies.length} submits by ${SUBMITTERS} clients) with ${scrapers} scrape loops${scrapers && INTERVAL ? ` (${INTERVAL} ms apart)` : ""}${also}`,
    );
  };
  await phase(0);
  await phase(SCRAPERS);
  await phase(0);
  await pool.close();
} finally {
  if (server?.pid) {
    server.kill("SIGTERM");
    await new Promise((r) => server!.once("exit", r));
  }
  await pg.stop();
}
