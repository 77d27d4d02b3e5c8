import { z } from "zod";
import type { Container } from "../../container.js";
import { PLATFORM_TENANT } from "../../services/auth.js";
import { requireRole } from "../auth.js";
import { errors, problem, sendProblem } from "../problem.js";
import { TenantName } from "../schemas.js";
import type { Api } from "../types.js";

const Secret = z.object({ secret: z.string() }).meta({ id: "WebhookSecret" });

export async function tenantRoutes(app: Api, c: Container) {
  const admin = requireRole(c, "admin");
  const tenants = c.repos.tenants;
  const params = z.strictObject({ tenant: TenantName });

  const allowed = (principal: { tenant: string }, tenant: string) =>
    principal.tenant === PLATFORM_TENANT || principal.tenant === tenant;

  app.get(
    "/v1/tenants/:tenant/webhook-secret",
    {
      onRequest: admin,
      schema: { tags: ["tenants"], operationId: "getWebhookSecret", summary: "The tenant's webhook signing secret (whsec_…)", params, response: { 200: Secret, ...errors(404) } },
    },
    async (req, reply) => {
      const { tenant } = req.params;
      if (!allowed(req.principal, tenant)) return sendProblem(reply, problem("forbidden", "another tenant's secret", 403));
      if (!(await tenants.exists(tenant))) return sendProblem(reply, problem("not_found", "unknown tenant", 404));
      return { secret: await tenants.ensure(tenant) };
    },
  );

  app.post(
    "/v1/tenants/:tenant/webhook-secret/rotate",
    {
      onRequest: admin,
      schema: { tags: ["tenants"], operationId: "rotateWebhookSecret", summary: "Rotate the tenant's webhook signing secret", params, response: { 200: Secret, ...errors(404) } },
    },
    async (req, reply) => {
      const { tenant } = req.params;
      if (!allowed(req.principal, tenant)) return sendProblem(reply, problem("forbidden", "another tenant's secret", 403));
      if (!(await tenants.exists(tenant))) return sendProblem(reply, problem("not_found", "unknown tenant", 404));
      await tenants.ensure(tenant);
      return { secret: (await tenants.rotate(tenant))! };
    },
  );
}
