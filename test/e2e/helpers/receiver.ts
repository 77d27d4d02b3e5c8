import { createServer, type IncomingHttpHeaders, type Server } from "node:http";

export interface Delivery {
  headers: IncomingHttpHeaders;
  body: string;
  at: number;
}

/** A webhook receiver on 127.0.0.1 that records every request and answers with `status(delivery)`. */
export async function startReceiver(status: (d: Delivery, n: number) => number = () => 204) {
  const deliveries: Delivery[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const d = { headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: Date.now() };
      deliveries.push(d);
      res.writeHead(status(d, deliveries.length)).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    deliveries,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}

/** The three Standard Webhooks headers of a recorded delivery, for Webhook#verify. */
export const webhookHeaders = (d: Delivery) => ({
  "webhook-id": String(d.headers["webhook-id"]),
  "webhook-timestamp": String(d.headers["webhook-timestamp"]),
  "webhook-signature": String(d.headers["webhook-signature"]),
});

export type Receiver = Awaited<ReturnType<typeof startReceiver>>;
