import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import helmet from "@fastify/helmet";
import fastifyStatic from "@fastify/static";
import type { HttpDeps } from "../../container.js";
import type { Api } from "../types.js";

const ROOT = fileURLToPath(new URL("../dashboard/", import.meta.url));
const PAGE = readFileSync(new URL("index.html", `file://${ROOT}`), "utf8");

/**
 * Nothing inline: scripts and styles come from this origin's static files only, and the page
 * talks to this origin's public API alone, so an injected tag or a stray link can do nothing.
 */
export const DASHBOARD_CSP = {
  defaultSrc: ["'none'"],
  scriptSrc: ["'self'"],
  styleSrc: ["'self'"],
  imgSrc: ["'self'", "data:"],
  connectSrc: ["'self'"],
  baseUri: ["'none'"],
  formAction: ["'none'"],
  frameAncestors: ["'none'"],
};

/**
 * The dashboard: a static page and its ES modules, which call the public API with the key the
 * user enters (kept in sessionStorage). Security headers apply to this scope only, so /docs
 * (swagger-ui, inline scripts) and the JSON API keep theirs.
 */
export async function dashboardRoutes(app: Api, _c: HttpDeps) {
  await app.register(async (scope) => {
    await scope.register(helmet, {
      contentSecurityPolicy: { useDefaults: false, directives: DASHBOARD_CSP },
      referrerPolicy: { policy: "no-referrer" },
      frameguard: { action: "deny" },
    });
    await scope.register(fastifyStatic, {
      root: ROOT,
      prefix: "/dashboard/",
      wildcard: false,
      index: false,
      decorateReply: false,
      cacheControl: false,
      setHeaders: (res) => res.setHeader("cache-control", "no-cache"),
    });
    scope.get("/dashboard", { schema: { hide: true } }, async (_req, reply) =>
      reply.type("text/html; charset=utf-8").header("cache-control", "no-cache").send(PAGE),
    );
  });
}
