// The cheapest API there could be, for bench/http-floor.ts: plain node:http, no database, no
// validation. Each POST /v1/process-next is answered after DELAY_MS (standing in for the
// database's round trip) with MAX canned jobs in jobline's representation, and one answer per
// item of `complete`. Prints its port on stdout once listening.
import { createServer } from "node:http";

const max = Number(process.env.MAX ?? 10);
const delayMs = Number(process.env.DELAY_MS ?? 0);
const job = (i) => ({
  id: `0193a0b2-6a7e-7c2e-9b1a-${String(i).padStart(12, "0")}`,
  tenant: "bench",
  queue: "bench",
  kind: "noop",
  payload: {},
  priority: 0,
  groupKey: null,
  runAt: "2026-11-24T10:00:00.000Z",
  status: "running",
  attempts: 1,
  maxAttempts: 5,
  leaseExpiresAt: "2026-11-24T10:01:00.000Z",
  workerId: "c1",
  cancelRequested: false,
  result: null,
  lastError: null,
  batchId: null,
  idempotencyKey: null,
  webhookUrl: null,
  createdAt: "2026-11-24T10:00:00.000Z",
  updatedAt: "2026-11-24T10:00:00.000Z",
  startedAt: "2026-11-24T10:00:00.000Z",
  finishedAt: null,
  version: 2,
  leaseToken: "0193a0b2-6a7e-7c2e-9b1a-1f2e3d4c5b6b",
});
let n = 0;
const server = createServer((req, res) => {
  let body = "";
  req.setEncoding("utf8");
  req.on("data", (c) => {
    body += c;
  });
  req.on("end", () => {
    const { complete = [] } = JSON.parse(body);
    const answer = () => {
      const out = JSON.stringify({
        jobs: Array.from({ length: max }, () => job(n++)),
        completed: complete.map((c) => ({ id: c.id, status: 200 })),
      });
      res.writeHead(200, { "content-type": "application/json" });
      res.end(out);
    };
    if (delayMs > 0) setTimeout(answer, delayMs);
    else answer();
  });
});
server.listen(0, "127.0.0.1", () => process.stdout.write(`${server.address().port}\n`));
