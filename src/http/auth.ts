import type { FastifyReply, FastifyRequest } from "fastify";
import { hasRole, PLATFORM_TENANT, type Principal, type Role, scopeOf } from "../services/auth.js";
import type { HttpDeps } from "../container.js";
import { problem, sendProblem } from "./problem.js";

declare module "fastify" {
  interface FastifyRequest {
    principal: Principal;
  }
}

/** The token of an `Authorization: Bearer <token>` header (API key or metrics token); null when absent or malformed. */
export function bearerToken(header: string | undefined): string | null {
  const m = typeof header === "string" ? /^Bearer\s+(\S{1,512})\s*$/i.exec(header) : null;
  return m ? m[1]! : null;
}

/**
 * onRequest hook factory: Bearer key → principal with one of `roles` (admin passes every check).
 * Before the body is read or validated, so a caller without a valid key learns nothing of the
 * route's schema and gets 401 (or 403) whatever it sent.
 */
export function requireRole(c: HttpDeps, ...roles: Role[]) {
  return async (req: FastifyRequest, reply: FastifyReply) => {
    const key = bearerToken(req.headers.authorization);
    if (key === null) return sendProblem(reply, problem("unauthorized", "missing or malformed Authorization: Bearer <api key>"));
    const principal = await c.services.auth.authenticate(key);
    if (!principal) return sendProblem(reply, problem("unauthorized", "unknown API key"));
    if (!roles.some((r) => hasRole(principal, r)))
      return sendProblem(reply, problem("forbidden", `this key lacks the role: ${roles.join(" or ")}`));
    req.principal = principal;
  };
}

/** The onRequest hook requireRole makes. */
export type RoleHook = ReturnType<typeof requireRole>;

export const scope = (req: FastifyRequest) => scopeOf(req.principal);

/** The tenant a create writes to: a platform key may name one ("default" if it names none), any other key only its own. null: it named another. */
export function writeTenant(req: FastifyRequest, named: string | undefined): string | null {
  const own = req.principal.tenant;
  if (own === PLATFORM_TENANT) return named ?? "default";
  return named === undefined || named === own ? own : null;
}

/** writeTenant's null: a tenant key named another tenant. */
export const otherTenantRefused = (reply: FastifyReply) =>
  sendProblem(reply, problem("invalid_request", "only a platform key (tenant *) may name another tenant", 400));
