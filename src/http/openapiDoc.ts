import { jsonSchemaTransformObject } from "fastify-type-provider-zod";

type Doc = Record<string, unknown> & { paths?: Record<string, Record<string, Operation>> };
interface Operation {
  requestBody?: { required?: boolean };
  responses?: Record<string, { content?: Record<string, unknown> }>;
}

/** Routes whose JSON body may be omitted entirely. */
const OPTIONAL_BODY = new Set(["/v1/jobs/{id}/cancel", "/v1/batches/{id}/seal", "/v1/batches/{id}/cancel", "/v1/batches/{id}/retry"]);

/**
 * Brings the generated document in line with what the server does: error
 * responses are application/problem+json, and some POST bodies are optional.
 */
export function polishOpenApi(input: Parameters<typeof jsonSchemaTransformObject>[0]) {
  const doc = jsonSchemaTransformObject(input) as Doc;
  for (const [path, ops] of Object.entries(doc.paths ?? {})) {
    for (const op of Object.values(ops)) {
      if (OPTIONAL_BODY.has(path) && op.requestBody) op.requestBody.required = false;
      for (const [status, res] of Object.entries(op.responses ?? {})) {
        const json = res.content?.["application/json"];
        if (Number(status) >= 400 && json) res.content = { "application/problem+json": json };
      }
    }
  }
  return doc as ReturnType<typeof jsonSchemaTransformObject>;
}
