import { z } from "zod";
import { TenantName } from "./common.js";

// Tenants' request and response schemas (routes/tenants.ts).

export const TenantParams = z.strictObject({ tenant: TenantName });
export const WebhookSecret = z.object({ secret: z.string() }).meta({ id: "WebhookSecret" });
