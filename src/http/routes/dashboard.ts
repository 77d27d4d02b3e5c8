import { readFileSync } from "node:fs";
import type { Container } from "../../container.js";
import type { Api } from "../types.js";

const PAGE = readFileSync(new URL("../dashboard.html", import.meta.url), "utf8");

/** One static page; it reads the same API with a key the user pastes (kept in sessionStorage). */
export async function dashboardRoutes(app: Api, _c: Container) {
  app.get("/dashboard", { schema: { hide: true } }, async (_req, reply) =>
    reply.type("text/html; charset=utf-8").header("cache-control", "no-cache").send(PAGE),
  );
}
