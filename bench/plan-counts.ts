// How often PostgreSQL plans the statements of an HTTP run, and what planning costs against execution:
// `npx tsx bench/plan-counts.ts [TREE] [JOBS]` (TREE: the absolute path of a checkout, default this one, as bench/ab-uncapped.ts).
// pg_stat_statements with track_planning over one drain of JOBS jobs after 2,000 of warm-up, 16 clients,
// MAX env (default 1) jobs per poll, completions in the next poll. GENERIC=1 runs the server with
// plan_cache_mode = force_generic_plan, to see what the custom plans cost.
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const [tree = join(import.meta.dirname, ".."), jobsArg] = process.argv.slice(2);
const jobs = Number(jobsArg ?? 10_000);
const max = Number(process.env.MAX ?? 1);
const { startEmbeddedPostgres } = await import(`${tree}/src/db/embedded.ts`);
const { migrate } = await import(`${tree}/src/db/migrate.ts`);
const { joblineHttp } = await import(`${tree}/bench/jobline.ts`);
const postgres = (await import(`${tree}/node_modules/postgres/src/index.js`)).default;
const flags = ["-c", "shared_preload_libraries=pg_stat_statements", "-c", "pg_stat_statements.track=all", "-c", "pg_stat_statements.track_planning=on"];
if (process.env.GENERIC === "1") flags.push("-c", "plan_cache_mode=force_generic_plan");
const dataDir = mkdtempSync(join(tmpdir(), "plan-counts-"));
const server = await startEmbeddedPostgres({ dataDir, persistent: false, postgresFlags: flags });
try {
  await migrate(server.url());
  const s = postgres(server.url(), { max: 1, onnotice: () => {} });
  await s.unsafe("CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
  const rate = await joblineHttp(server.url(), { jobs, clients: 16, max, ack: true, warmup: 2000 }, () => {
    void s.unsafe("SELECT pg_stat_statements_reset()");
    return undefined;
  });
  const rows = await s.unsafe(`
      SELECT calls, plans, round((total_plan_time * 1000 / greatest(plans, 1))::numeric) AS plan_us,
             round((total_exec_time * 1000 / greatest(calls, 1))::numeric) AS exec_us,
             round((total_plan_time * 1000 / ${jobs})::numeric, 1) AS plan_us_per_job,
             round((total_exec_time * 1000 / ${jobs})::numeric, 1) AS exec_us_per_job,
             regexp_replace(left(query, 70), '\\s+', ' ', 'g') AS statement
      FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
      ORDER BY total_exec_time + total_plan_time DESC LIMIT 6`);
  console.log(`${tree}: max ${max}, ${Math.round(rate)} jobs/s`);
  console.table(rows);
  await s.end();
} finally {
  await server.stop();
  rmSync(dataDir, { recursive: true, force: true });
}
