import Fastify, { type FastifyBaseLogger, LogController } from "fastify";
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from "fastify-type-provider-zod";
import type { HttpDeps } from "../container.js";
import { problem, sendProblem } from "./problem.js";
import { healthRoutes } from "./routes/health.js";

/**
 * What `jobline worker` serves on JOBLINE_WORKER_PORT: /metrics (its reaper, webhook and
 * handler figures live in this process), /healthz and /readyz. The same routes as the API's.
 */
export async function buildOpsApp(c: HttpDeps) {
  const app = Fastify({
    loggerInstance: c.logger.child({ component: "worker-http" }) as FastifyBaseLogger,
    logController: new LogController({ disableRequestLogging: true }),
  }).withTypeProvider<ZodTypeProvider>();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  app.setErrorHandler((error, req, reply) => {
    req.log.error({ err: error }, "unhandled error");
    return sendProblem(reply, problem("internal", "internal error", 500));
  });
  await app.register(async (api) => healthRoutes(api, c));
  return app;
}
