import { err, ok } from "../domain/outcomes.js";
import type { TenantsRepository } from "../repositories/tenants.js";
import { PLATFORM_TENANT, type Principal } from "./auth.js";

export function createTenantService(deps: { tenants: TenantsRepository }) {
  const { tenants } = deps;

  /** Only the tenant's own keys and platform keys may touch its secret; the tenant must exist. */
  async function check(principal: Principal, tenant: string) {
    if (principal.tenant !== PLATFORM_TENANT && principal.tenant !== tenant) return err("forbidden", "another tenant's secret");
    if (!(await tenants.exists(tenant))) return err("not_found", "unknown tenant");
    return null;
  }

  /** The tenant's webhook signing secret, made on first use. */
  async function webhookSecret(principal: Principal, tenant: string) {
    return (await check(principal, tenant)) ?? ok(await tenants.ensure(tenant));
  }

  async function rotateWebhookSecret(principal: Principal, tenant: string) {
    const denied = await check(principal, tenant);
    if (denied) return denied;
    await tenants.ensure(tenant);
    return ok((await tenants.rotate(tenant))!);
  }

  return { webhookSecret, rotateWebhookSecret };
}

export type TenantService = ReturnType<typeof createTenantService>;
