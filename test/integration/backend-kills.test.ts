import { afterAll, beforeAll, describe, expect, it, onTestFailed } from "vitest";
import { startMaintenance } from "../../src/worker/maintenance.js";
import { useTestEnv } from "../helpers/app.js";
import { startBackendKiller, startKillLoad } from "../helpers/backendKills.js";
import { adminUrl } from "../helpers/db.js";
import { until } from "../helpers/until.js";

/**
 * A random backend of the API's database is terminated every 500 ms for 20 s while producers
 * submit and HTTP workers claim and complete (issue 31.4). Clients resend on 503 as the
 * problem says (submits with their Idempotency-Key, completes as they were). Nothing may be
 * duplicated (a second job for one key, a job completed under two leases) or lost (an
 * acknowledged submit missing or never finished; a claim whose answer was lost is the
 * reaper's after its 5 s lease). Latency is the bench's business (bench/backend-kills.ts).
 */
const setup = useTestEnv("kills", { JOBLINE_DB_POOL_MAX: 8, JOBLINE_REAPER_INTERVAL_MS: 500 }, { listen: true });
let maintenance: { stop: () => Promise<void> };

beforeAll(async () => {
  maintenance = startMaintenance(setup.env.c);
});
afterAll(async () => {
  await maintenance?.stop();
});

describe("backends killed every 500 ms under load", () => {
  it("duplicates nothing and loses nothing", async () => {
    const keys = { client: await setup.env.key("kills", "client"), worker: await setup.env.key("kills", "worker") };
    const load = startKillLoad(setup.base, keys);
    await new Promise((r) => setTimeout(r, 1000));
    load.phase = "kills";
    const killer = startBackendKiller(adminUrl(), new URL(setup.env.url).pathname.slice(1));
    await new Promise((r) => setTimeout(r, 20_000));
    const kills = await killer.stop();
    await load.stopProducers();
    // Workers go on until every acknowledged job is finished (claims lost with their answer come back after the lease).
    const acked = load.acked.size;
    onTestFailed(() => console.log(`answers: ${JSON.stringify(Object.fromEntries([...load.status].sort()))}`));
    await until(
      "every job succeeded",
      async () => {
        const [r] = await setup.env.c.sql<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE status <> 'succeeded'`;
        return r!.n === 0 ? true : undefined;
      },
      60_000,
      200,
    );
    await load.stop();
    console.log(`${kills} backends killed; ${acked} submits acknowledged; answers: ${JSON.stringify(Object.fromEntries([...load.status].sort()))}`);

    expect(kills).toBeGreaterThan(10);
    const rows = await setup.env.c.sql<{ key: string; n: number }[]>`
      SELECT payload->>'key' AS key, count(*)::int AS n FROM jobs GROUP BY 1`;
    // One job per logical submit, every acknowledged one stored.
    expect(rows.filter((r) => r.n !== 1)).toEqual([]);
    const stored = new Set(rows.map((r) => r.key));
    expect([...load.acked].filter((k) => !stored.has(k))).toEqual([]);
    // No job completed under two leases (run twice and both told "done").
    expect([...load.completedBy].filter(([, tokens]) => tokens.size > 1)).toEqual([]);
  }, 150_000);
});
