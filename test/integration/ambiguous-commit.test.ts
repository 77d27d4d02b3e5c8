import net from "node:net";
import postgres from "postgres";
import supertest from "supertest";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createJoblineClient } from "../../clients/typescript/src/client.js";
import { testConfig } from "../../src/config.js";
import { type Container, createContainer } from "../../src/container.js";
import { buildApp } from "../../src/http/app.js";
import type { Api } from "../../src/http/types.js";
import { createTestDatabase } from "../helpers/db.js";

/**
 * The connection dies at the instant of commit (issue 31.1): a proxy between the API and
 * PostgreSQL forwards everything, but when armed it cuts both sockets as the answer to an
 * INSERT comes back, which PostgreSQL sends after the commit (with ReadyForQuery). The job is
 * stored and the API never hears so. It must not answer "nothing changed" then; with a key
 * (the SDK's default), no resend may create a second job.
 */
let db: Awaited<ReturnType<typeof createTestDatabase>>;
let c: Container;
let app: Api;
let base = "";
let direct: postgres.Sql;
let proxy: net.Server;
let armed = 0;
let cuts = 0;
let key = "";

function startProxy(target: URL): Promise<number> {
  proxy = net.createServer((client) => {
    const server = net.connect(Number(target.port), target.hostname);
    const cut = () => {
      client.destroy();
      server.destroy();
    };
    client.on("error", cut);
    server.on("error", cut);
    client.on("close", cut);
    server.on("close", cut);
    client.on("data", (d) => server.write(d));
    server.on("data", (d) => {
      if (armed > 0 && d.includes("INSERT 0 ")) {
        armed--;
        cuts++;
        return cut();
      }
      client.write(d);
    });
  });
  return new Promise((r) => proxy.listen(0, "127.0.0.1", () => r((proxy.address() as net.AddressInfo).port)));
}

beforeAll(async () => {
  db = await createTestDatabase("ambiguous");
  const target = new URL(db.url);
  const port = await startProxy(target);
  const viaProxy = new URL(db.url);
  viaProxy.host = `127.0.0.1:${port}`;
  c = createContainer(testConfig({ JOBLINE_DB_POOL_MAX: 4 }), viaProxy.toString());
  await c.notifier.start();
  app = await buildApp(c);
  base = await app.listen({ host: "127.0.0.1", port: 0 });
  key = (await c.services.auth.createKey({ tenant: "amb", roles: ["client"] }))!.key;
  direct = postgres(db.url, { max: 1, onnotice: () => {} });
});
afterAll(async () => {
  await app?.close();
  await c?.close();
  await direct?.end();
  await new Promise((r) => proxy?.close(r));
  await db?.drop();
});

const stored = async (trial: string) =>
  (await direct<{ n: number }[]>`SELECT count(*)::int AS n FROM jobs WHERE payload->>'trial' = ${trial}`)[0]!.n;

describe("a submit whose connection dies as it commits", () => {
  it("without a key: stored, and answered 503 outcome_unknown, never 'nothing changed'", async () => {
    const answers: string[] = [];
    for (let i = 0; i < 25; i++) {
      const trial = `plain-${i}`;
      const before = cuts;
      armed = 1;
      const r = await supertest(app.server)
        .post("/v1/jobs")
        .set("authorization", `Bearer ${key}`)
        .send({ queue: "q", kind: "k", payload: { trial } });
      armed = 0;
      const n = await stored(trial);
      answers.push(`${r.status} ${r.body.code ?? ""} stored=${n} cut=${cuts - before}`);
    }
    // Every trial lost its answer after the commit, and none was told "nothing changed".
    expect(answers.filter((a) => a !== "503 outcome_unknown stored=1 cut=1")).toEqual([]);
  });

  it("with an Idempotency-Key: the API runs the keyed insert again at once and answers with the one job", async () => {
    for (let i = 0; i < 25; i++) {
      const trial = `keyed-${i}`;
      armed = 1;
      const r = await supertest(app.server)
        .post("/v1/jobs")
        .set("authorization", `Bearer ${key}`)
        .set("idempotency-key", `k-${trial}`)
        .send({ queue: "q", kind: "k", payload: { trial } });
      armed = 0;
      expect([r.status, await stored(trial)]).toEqual([200, 1]);
    }
  });

  it("through the SDK (its default key): answers lost twice, resent after 503 outcome_unknown, one job each", async () => {
    const sdk = createJoblineClient({ baseUrl: base, apiKey: key });
    for (let i = 0; i < 4; i++) {
      const trial = `sdk-${i}`;
      const before = cuts;
      // The insert's answer and the API's own rerun's answer: the API must answer 503.
      armed = 2;
      const r = await sdk.POST("/v1/jobs", { body: { queue: "q", kind: "k", payload: { trial } } });
      armed = 0;
      expect([r.response.status, cuts - before, await stored(trial)]).toEqual([200, 2, 1]);
    }
  });
});
