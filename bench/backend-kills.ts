// Completion latency while PostgreSQL backends are killed (issue 31.4): `npx tsx bench/backend-kills.ts`.
// The API (in this process) serves producers and HTTP workers that resend on 503 as told; one
// random client backend is terminated every 500 ms during the kill phase. Prints p50/p95 of a
// complete (resends included) clean and during kills, and what clients were answered.
import { testConfig } from "../src/config.js";
import { createContainer } from "../src/container.js";
import { migrate } from "../src/db/migrate.js";
import { buildApp } from "../src/http/app.js";
import { startMaintenance } from "../src/worker/maintenance.js";
import { p, startBackendKiller, startKillLoad } from "../test/helpers/backendKills.js";
import { createDatabase, progress, sleep, startBenchPostgres } from "./lib.js";

const PHASE_MS = Number(process.env.PHASE_MS ?? 20_000);

const pg = await startBenchPostgres();
try {
  await createDatabase(pg.url(), "kills");
  const url = pg.url("kills");
  await migrate(url);
  const c = createContainer(testConfig({ JOBLINE_DB_POOL_MAX: 10, JOBLINE_REAPER_INTERVAL_MS: 500 }), url, { application: "jobline-api" });
  await c.notifier.start();
  const app = await buildApp(c);
  const base = await app.listen({ host: "127.0.0.1", port: 0 });
  const maintenance = startMaintenance(c);
  const key = async (role: "client" | "worker") => `Bearer ${(await c.services.auth.createKey({ tenant: "b", roles: [role] }))!.key}`;
  const load = startKillLoad(base, { client: await key("client"), worker: await key("worker") });
  progress(`clean phase ${PHASE_MS} ms`);
  await sleep(PHASE_MS);
  const cleanStatus = new Map(load.status);
  load.phase = "kills";
  progress(`kill phase ${PHASE_MS} ms`);
  const killer = startBackendKiller(pg.url(), "kills");
  await sleep(PHASE_MS);
  const kills = await killer.stop();
  await load.stop();
  const during = Object.fromEntries([...load.status].map(([k, n]) => [k, n - (cleanStatus.get(k) ?? 0)]).filter(([, n]) => Number(n) > 0));
  const f = (xs: number[]) => `p50 ${p(xs, 0.5).toFixed(1)} ms, p95 ${p(xs, 0.95).toFixed(1)} ms (${xs.length})`;
  console.log(`completions clean: ${f(load.completeMs.clean)}`);
  console.log(`completions during ${kills} backend kills (one per 500 ms): ${f(load.completeMs.kills)}`);
  console.log(`p95 ratio kills/clean: ${(p(load.completeMs.kills, 0.95) / p(load.completeMs.clean, 0.95)).toFixed(2)}`);
  console.log(`answers during kills: ${JSON.stringify(during)}`);
  await maintenance.stop();
  await app.close();
  await c.close();
} finally {
  await pg.stop();
}
