import type { HttpDeps } from "../../container.js";
import { requireRole } from "../auth.js";
import { errors, fail } from "../problem.js";
import { TenantParams as params, WebhookSecret as Secret } from "../schemas/tenants.js";
import type { Api } from "../types.js";

export async function tenantRoutes(app: Api, c: HttpDeps) {
  const admin = requireRole(c, "admin");
  const tenants = c.services.tenants;

  app.get(
    "/v1/tenants/:tenant/webhook-secret",
    {
      onRequest: admin,
      schema: { tags: ["tenants"], operationId: "getWebhookSecret", summary: "The tenant's webhook signing secret (whsec_…)", params, response: { 200: Secret, ...errors(404) } },
    },
    async (req, reply) => {
      const out = await tenants.webhookSecret(req.principal, req.params.tenant);
      return out.ok ? { secret: out.value } : fail(reply, out);
    },
  );

  app.post(
    "/v1/tenants/:tenant/webhook-secret/rotate",
    {
      onRequest: admin,
      schema: { tags: ["tenants"], operationId: "rotateWebhookSecret", summary: "Rotate the tenant's webhook signing secret", params, response: { 200: Secret, ...errors(404) } },
    },
    async (req, reply) => {
      const out = await tenants.rotateWebhookSecret(req.principal, req.params.tenant);
      return out.ok ? { secret: out.value } : fail(reply, out);
    },
  );
}
