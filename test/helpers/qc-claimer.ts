// A worker process for queue-controls-races: claims through the gated text, prints the jobs it
// holds, then waits to be killed (SIGKILL) without completing or heartbeating them.
import postgres from "postgres";
import { jobsRepository } from "../../src/repositories/jobs.js";

const [url, queue, max] = process.argv.slice(2) as [string, string, string];
const sql = postgres(url, { max: 1, transform: postgres.camel, onnotice: () => {} });
const rows = await jobsRepository(sql).claimNext({ queues: [queue], tenant: null, workerId: "doomed", leaseSeconds: 1, max: Number(max) }, true);
process.stdout.write(`${JSON.stringify(rows.map((r) => r.id))}\n`);
setInterval(() => {}, 60_000);
