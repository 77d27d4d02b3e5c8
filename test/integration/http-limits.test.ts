import net from "node:net";
import { describe, expect, it } from "vitest";
import { createTestEnv, useTestEnv } from "../helpers/app.js";
import { until } from "../helpers/until.js";

// Deadlines for slow clients and the connection cap, over raw sockets: what a slowloris or a
// client holding thousands of sockets meets. Short settings here; defaults are in README.
const setup = useTestEnv("http_limits", { JOBLINE_HEADERS_TIMEOUT_MS: 1000, JOBLINE_REQUEST_TIMEOUT_MS: 1500 }, { listen: true });
const MAX_CONNECTIONS = 8;

interface Conn {
  socket: net.Socket;
  /** Everything received until the server closed the socket, or what came within `ms`. */
  ended: (ms: number) => Promise<{ text: string; closed: boolean; afterMs: number }>;
}

function connect(port = setup.port): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const started = Date.now();
    const socket = net.connect(port, "127.0.0.1");
    let text = "";
    let closed = false;
    const waiters: Array<() => void> = [];
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => {
      text += d;
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      closed = true;
      for (const w of waiters) w();
    });
    socket.once("connect", () =>
      resolve({
        socket,
        ended: (ms) =>
          new Promise((r) => {
            const done = () => r({ text, closed, afterMs: Date.now() - started });
            if (closed) return done();
            const t = setTimeout(done, ms);
            waiters.push(() => {
              clearTimeout(t);
              done();
            });
          }),
      }),
    );
    socket.once("error", reject);
  });
}

const status = (text: string) => Number(text.split(" ")[1]);

describe("slow clients are cut off", () => {
  it("a body sent a byte at a time is answered 408 at the request deadline, and nothing is written", async () => {
    const body = JSON.stringify({ queue: "slow", kind: "k", payload: { pad: "x".repeat(50) } });
    const c = await connect();
    c.socket.write(`POST /v1/jobs HTTP/1.1\r\nHost: x\r\nAuthorization: ${setup.client}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n`);
    let i = 0;
    const drip = setInterval(() => {
      if (i < body.length - 1 && !c.socket.destroyed) c.socket.write(body[i++]!);
    }, 200);
    // Without a deadline the body would take ~15 s and be accepted; Node's own default is 300 s.
    const r = await c.ended(10_000);
    clearInterval(drip);
    c.socket.destroy();
    expect(r.closed, `still open after ${r.afterMs} ms`).toBe(true);
    expect(status(r.text), r.text).toBe(408);
    expect(r.text).toMatch(/application\/problem\+json[\s\S]*"code":"request_timeout"/);
    expect((await setup.env.c.sql`SELECT 1 FROM jobs WHERE queue = 'slow'`).length).toBe(0);
  });

  it("headers that never finish are cut off at the headers deadline", async () => {
    const c = await connect();
    c.socket.write("GET /v1/jobs HTTP/1.1\r\nHost: x\r\n");
    const drip = setInterval(() => !c.socket.destroyed && c.socket.write("X-A: b\r\n"), 200);
    const r = await c.ended(10_000);
    clearInterval(drip);
    c.socket.destroy();
    expect(r.closed, `still open after ${r.afterMs} ms`).toBe(true);
    expect(status(r.text), r.text).toBe(408);
  });

  it("a long poll is the server's wait: it outlasts the request deadline and is answered", async () => {
    const res = await setup.env
      .http()
      .post("/v1/process-next")
      .set("authorization", setup.worker)
      .send({ queues: ["empty-q"], workerId: "w", waitMs: 3000 });
    expect(res.status).toBe(200);
    expect(res.body.jobs).toEqual([]);
  });
});

describe("connection cap", () => {
  it(`past ${MAX_CONNECTIONS} open connections a new one is closed at once; a freed slot serves again`, async () => {
    // Its own server with a long headers deadline, so the held sockets keep their slots however slow the machine.
    const capped = await createTestEnv("http_cap", { JOBLINE_MAX_CONNECTIONS: MAX_CONNECTIONS });
    const port = Number(new URL(await capped.app.listen({ port: 0, host: "127.0.0.1" })).port);
    const held: Conn[] = [];
    try {
      for (let i = 0; i < MAX_CONNECTIONS; i++) held.push(await connect(port));
      // The server counts a connection once it accepts it: wait until all are in.
      await until("all held connections accepted", async () => {
        const n = await new Promise<number>((r) => capped.app.server.getConnections((_e, count) => r(count)));
        return n === MAX_CONNECTIONS ? true : undefined;
      }, 10_000, 20);
      const extra = await connect(port);
      extra.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
      const refused = await extra.ended(5000);
      expect(refused.closed).toBe(true);
      expect(refused.text).toBe("");
      held.pop()!.socket.destroy();
      const served = await until("a freed slot serves a request", async () => {
        const next = await connect(port);
        next.socket.write("GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        const r = await next.ended(5000);
        return status(r.text) === 200 ? r : undefined;
      }, 10_000, 50);
      expect(served.text).toMatch(/"status":"ok"/);
    } finally {
      for (const h of held) h.socket.destroy();
      capped.app.server.closeAllConnections();
      await capped.close();
    }
  });
});
