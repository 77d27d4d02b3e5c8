import { z } from "zod";
import { PLATFORM_TENANT, ROLES } from "../../services/auth.js";
import { TenantName } from "./common.js";

// API keys' request and response schemas (routes/apiKeys.ts).

const Roles = z.array(z.enum(ROLES));

export const ApiKeySchema = z
  .object({ id: z.uuid(), tenant: z.string(), roles: Roles, name: z.string().nullable(), prefix: z.string(), createdAt: z.string() })
  .meta({ id: "ApiKey" });

export const ApiKeyCreateBody = z.strictObject({
  tenant: z.union([z.literal(PLATFORM_TENANT), TenantName]),
  roles: Roles.min(1).max(3),
  name: z.string().min(1).max(200).refine((s) => !s.includes("\u0000") && s.isWellFormed()).optional(),
});

/** Made where the route is registered, as pageSchema: the document's components keep that order. */
export const apiKeyCreated = () => z.object({ id: z.uuid(), key: z.string(), tenant: z.string(), roles: Roles }).meta({ id: "ApiKeyCreated" });
