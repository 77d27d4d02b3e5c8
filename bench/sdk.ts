// The TypeScript SDK's own runHttpWorker as a bench row: 16 workers against one API process.
import { execFileSync } from "node:child_process";
import { setMaxListeners } from "node:events";
import { fileURLToPath } from "node:url";
import postgres from "postgres";
import { type ApiProcess, seedJobs, startApi } from "./jobline.js";
import { withTimeout } from "./lib.js";

type Sdk = typeof import("../clients/typescript/src/index.js");
let sdk: Promise<Sdk> | undefined;
/**
 * The SDK as its users run it: the package's build (tsc), built once per process. Its source
 * through tsx is slower: esbuild's keepNames names every closure the worker makes per job
 * (20–30 µs more client CPU per job, docs/performance.md).
 */
const loadSdk = () =>
  (sdk ??= (async () => {
    execFileSync(process.execPath, [fileURLToPath(new URL("../clients/typescript/scripts/build.mjs", import.meta.url))], { stdio: ["ignore", 2, 2] });
    return (await import(new URL("../clients/typescript/dist/index.js", import.meta.url).href)) as Sdk;
  })());

/** Drains `jobs` seeded no-op jobs with 16 runHttpWorker loops; jobs/s from the first handler call until all succeeded in the database. */
async function drainWithSdk(api: ApiProcess, url: string, o: { jobs: number; concurrency: number; before?: number }) {
  const { runHttpWorker } = await loadSdk();
  const stop = new AbortController();
  // Each worker keeps up to two listeners on the stop signal they share (its wait for a slot, its poll's).
  setMaxListeners(64, stop.signal);
  let first = 0;
  let handled = 0;
  const errors: string[] = [];
  const workers = Array.from({ length: 16 }, (_, i) =>
    runHttpWorker({
      baseUrl: api.url,
      apiKey: api.key,
      queues: ["bench"],
      handlers: {
        noop: () => {
          first ||= performance.now();
          handled++;
        },
      },
      concurrency: o.concurrency,
      waitMs: 1000,
      signal: stop.signal,
      workerId: `sdk-${i}`,
      onError: (e) => {
        if (errors.length < 3) errors.push(String(e));
      },
    }),
  );
  const db = postgres(url, { max: 1, onnotice: () => {} });
  try {
    await withTimeout(
      (async () => {
        for (;;) {
          // The table is counted only once every handler ran: a count every 5 ms during the run
          // read the whole table each time, PostgreSQL CPU the hand-written rows do not pay.
          if (handled < o.jobs) {
            await new Promise((r) => setTimeout(r, 5));
            continue;
          }
          const [r] = await db<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE status = 'succeeded'`;
          if (r!.n >= (o.before ?? 0) + o.jobs) return;
          await new Promise((r) => setTimeout(r, 5));
        }
      })(),
      300_000,
      "sdk worker",
    );
    const ms = performance.now() - first;
    stop.abort();
    // Exactly once by the database (each job succeeded at its first attempt), by the handlers
    // and by the workers' stats (a stop that cuts a poll whose completions committed resends them).
    const stats = await Promise.all(workers);
    const counted = stats.reduce((n, s) => n + s.succeeded, 0);
    const [r] = await db<{ ok: number }[]>`SELECT count(*) FILTER (WHERE status = 'succeeded' AND attempts = 1)::int AS ok FROM jobs`;
    if (handled !== o.jobs || r!.ok !== (o.before ?? 0) + o.jobs || counted !== o.jobs)
      throw new Error(`ran ${handled} handlers for ${o.jobs} jobs; ${r!.ok} succeeded at their first attempt; stats say ${counted}: ${errors.join(" | ")}`);
    return (o.jobs / ms) * 1000;
  } finally {
    stop.abort();
    await db.end();
  }
}

/** `warmup` jobs first through the same API process, untimed (as joblineHttp does), then the timed `jobs`. */
export async function sdkWorkerThroughput(
  url: string,
  o: { jobs: number; concurrency: number; warmup?: number },
  onApi?: (a: ApiProcess) => (() => void) | undefined,
) {
  const warmup = o.warmup ?? 0;
  await seedJobs(url, warmup || o.jobs);
  const api = await startApi(url);
  try {
    if (warmup) {
      await drainWithSdk(api, url, { jobs: warmup, concurrency: o.concurrency });
      await seedJobs(url, o.jobs);
    }
    const onDone = onApi?.(api);
    const r = await drainWithSdk(api, url, { ...o, before: warmup });
    onDone?.();
    return r;
  } finally {
    await api.stop();
  }
}
