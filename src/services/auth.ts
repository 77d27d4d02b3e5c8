import { createHash, randomBytes } from "node:crypto";
import { err, ok } from "../domain/outcomes.js";
import type { ApiKeysRepository } from "../repositories/apiKeys.js";
import type { TenantsRepository } from "../repositories/tenants.js";

export const ROLES = ["client", "worker", "admin"] as const;
export type Role = (typeof ROLES)[number];
export const PLATFORM_TENANT = "*";

export interface Principal {
  keyId: string;
  tenant: string;
  roles: Role[];
}

export const hashKey = (key: string) => createHash("sha256").update(key).digest("hex");
const newKey = () => `jl_${randomBytes(24).toString("base64url")}`;

/** A platform key (tenant `*`) sees every tenant: scope null. */
export const scopeOf = (p: Principal) => (p.tenant === PLATFORM_TENANT ? null : p.tenant);

/** admin implies every role. */
export const hasRole = (p: Principal, role: Role) => p.roles.includes("admin") || p.roles.includes(role);

export function createAuthService(deps: { apiKeys: ApiKeysRepository; tenants: TenantsRepository; cacheMs: number }) {
  // Keys are looked up on every request; a short cache keeps that off the
  // hot path. A deleted key stops working in this process at once and in
  // other processes within cacheMs.
  const cache = new Map<string, { principal: Principal | null; until: number }>();

  async function authenticate(key: string): Promise<Principal | null> {
    const h = hashKey(key);
    const hit = cache.get(h);
    if (hit && hit.until > Date.now()) return hit.principal;
    const row = await deps.apiKeys.findByHash(h);
    const principal = row ? { keyId: row.id, tenant: row.tenant, roles: row.roles as Role[] } : null;
    if (cache.size > 10_000) cache.clear();
    cache.set(h, { principal, until: Date.now() + deps.cacheMs });
    return principal;
  }

  async function createKey(a: { tenant: string; roles: Role[]; name?: string | undefined; key?: string | undefined }) {
    const key = a.key ?? newKey();
    const row = await deps.apiKeys.insert({
      tenant: a.tenant,
      roles: [...new Set(a.roles)],
      name: a.name ?? null,
      keyHash: hashKey(key),
      prefix: key.slice(0, 7),
    });
    if (a.tenant !== PLATFORM_TENANT) await deps.tenants.ensure(a.tenant);
    cache.delete(hashKey(key));
    return row ? { ...row, key } : null;
  }

  /** Creates a key by the issuer's rules: a tenant admin only for its own tenant. */
  async function createKeyAs(issuer: Principal, a: { tenant: string; roles: Role[]; name?: string | undefined }) {
    if (issuer.tenant !== PLATFORM_TENANT && issuer.tenant !== a.tenant)
      return err("forbidden", "a tenant admin may only create keys for its own tenant");
    const created = await createKey(a);
    return created ? ok(created) : err("invalid", "key collision; retry");
  }

  async function deleteKeyAs(issuer: Principal, id: string) {
    const row = await deps.apiKeys.findById(id);
    if (!row || (issuer.tenant !== PLATFORM_TENANT && row.tenant !== issuer.tenant)) return err("not_found");
    const deleted = await deps.apiKeys.deleteById(id);
    if (!deleted) return err("not_found");
    cache.clear();
    return ok(deleted);
  }

  /** JOBLINE_BOOTSTRAP_KEY: make sure a platform admin with that value exists. */
  async function ensureBootstrapKey(key: string) {
    const existing = await deps.apiKeys.findByHash(hashKey(key));
    if (existing) return existing;
    return createKey({ tenant: PLATFORM_TENANT, roles: ["admin"], name: "bootstrap", key });
  }

  /** First start: some platform admin key must exist; returns the one made now (its key shown once), or null. */
  async function ensureAdminKey() {
    if (await deps.apiKeys.platformAdminExists()) return null;
    return createKey({ tenant: PLATFORM_TENANT, roles: ["admin"], name: "initial admin" });
  }

  return {
    authenticate,
    ensureAdminKey,
    createKey,
    createKeyAs,
    deleteKeyAs,
    ensureBootstrapKey,
    listKeys: (issuer: Principal) => deps.apiKeys.list(scopeOf(issuer)),
  };
}

export type AuthService = ReturnType<typeof createAuthService>;
