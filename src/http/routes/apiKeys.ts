import { z } from "zod";
import type { HttpDeps } from "../../container.js";
import type { ROLES } from "../../services/auth.js";
import { requireRole } from "../auth.js";
import { errors, fail } from "../problem.js";
import { ApiKeyCreateBody, ApiKeySchema, apiKeyCreated } from "../schemas/apiKeys.js";
import { IdParams } from "../schemas/common.js";
import type { Api } from "../types.js";

export async function apiKeyRoutes(app: Api, c: HttpDeps) {
  const admin = requireRole(c, "admin");
  const auth = c.services.auth;
  const tags = ["api-keys"];

  app.post(
    "/v1/api-keys",
    {
      onRequest: admin,
      schema: {
        tags,
        operationId: "createApiKey",
        summary: "Create an API key (the key is shown once)",
        body: ApiKeyCreateBody,
        response: { 201: apiKeyCreated(), ...errors() },
      },
    },
    async (req, reply) => {
      const out = await auth.createKeyAs(req.principal, req.body);
      if (!out.ok) return fail(reply, out);
      const k = out.value;
      return reply.code(201).send({ id: k.id, key: k.key, tenant: k.tenant, roles: k.roles as (typeof ROLES)[number][] });
    },
  );

  app.get(
    "/v1/api-keys",
    {
      onRequest: admin,
      schema: { tags, operationId: "listApiKeys", summary: "List API keys (never their secrets)", response: { 200: z.object({ items: z.array(ApiKeySchema) }), ...errors() } },
    },
    async (req) => {
      const rows = await auth.listKeys(req.principal);
      return {
        items: rows.map((r) => ({
          id: r.id,
          tenant: r.tenant,
          roles: r.roles as (typeof ROLES)[number][],
          name: r.name,
          prefix: r.prefix,
          createdAt: r.createdAt.toISOString(),
        })),
      };
    },
  );

  app.delete(
    "/v1/api-keys/:id",
    {
      onRequest: admin,
      schema: { tags, operationId: "deleteApiKey", summary: "Delete an API key", params: IdParams, response: { 204: z.null().describe("deleted"), ...errors(404) } },
    },
    async (req, reply) => {
      const out = await auth.deleteKeyAs(req.principal, req.params.id);
      if (!out.ok) return fail(reply, out);
      return reply.code(204).send(null);
    },
  );
}
