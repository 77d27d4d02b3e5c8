import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Container } from "../../container.js";
import { BATCH_STATUSES } from "../../domain/batches.js";
import { PLATFORM_TENANT } from "../../services/auth.js";
import { MAX_BATCH_JOBS } from "../../services/batches.js";
import { batchDto } from "../../services/representation.js";
import { requireRole, scope } from "../auth.js";
import { errors, fail, problem, sendProblem } from "../problem.js";
import { BatchSchema, JobArray } from "../schemas/batches.js";
import { IdParams, NamedTenant, WebhookUrl } from "../schemas/common.js";
import type { Api } from "../types.js";
import { keysetPage, PageQuery } from "../cursor.js";
import { webhookUrlGuard } from "../webhookUrls.js";
import { TraceHeaders, traceOf } from "../traceHeaders.js";

/**
 * 10,000 jobs with small payloads already pass the global 1 MiB body limit,
 * so the two routes that take job arrays accept up to 32 MiB; each payload is
 * still held to 256 KiB and the count to 10,000.
 */
export const BATCH_BODY_LIMIT = 32 * 1024 * 1024;

/** More than 10,000 jobs is "too large" (413), not "invalid" (400): answered before the array is validated item by item. */
async function tooManyJobs(req: FastifyRequest, reply: FastifyReply) {
  const jobs = (req.body as { jobs?: unknown } | undefined)?.jobs;
  if (Array.isArray(jobs) && jobs.length > MAX_BATCH_JOBS)
    return sendProblem(reply, problem("payload_too_large", `at most ${MAX_BATCH_JOBS} jobs per request`, 413));
}

export async function batchRoutes(app: Api, c: Container) {
  const svc = c.services.batches;
  const client = requireRole(c, "client");
  const tags = ["batches"];
  const refuseWebhookUrls = webhookUrlGuard(c);
  const jobUrls = (jobs: Array<{ webhookUrl?: string | undefined }>) =>
    jobs.map((j, i): [string, string | undefined] => [`jobs[${i}].webhookUrl`, j.webhookUrl]);
  const send = (reply: FastifyReply, v: Parameters<typeof batchDto>, code = 200) =>
    reply.code(code).header("etag", `"${v[0].version}"`).send(batchDto(...v));

  app.post(
    "/v1/batches",
    {
      onRequest: client,
      preValidation: tooManyJobs,
      bodyLimit: BATCH_BODY_LIMIT,
      schema: {
        tags,
        operationId: "createBatch",
        summary: "Create a batch of jobs; sealed at once unless `seal: false`",
        description:
          "Up to 10,000 jobs per request (413 beyond; body up to 32 MiB, each payload up to 256 KiB). With `seal: false` " +
          "the batch stays `preparing`: add jobs with POST /v1/batches/{id}/jobs, none is claimable until it is sealed.",
        body: z.strictObject({
          jobs: JobArray,
          seal: z.boolean().default(true),
          sealWithinSeconds: z
            .number()
            .int()
            .min(1)
            .max(31_536_000)
            .optional()
            .describe("An open batch not sealed within this (default 86400) is cancelled with its jobs (seal_timeout)"),
          webhookUrl: WebhookUrl.optional(),
          tenant: NamedTenant,
        })
          // A sealed batch of nothing would complete the moment it is created; only an open one may start empty.
          .refine((b) => b.jobs.length > 0 || b.seal === false, { message: "a sealed batch needs at least one job", path: ["jobs"] }),
        headers: z.object(TraceHeaders),
        response: { 201: BatchSchema, ...errors(413) },
      },
    },
    async (req, reply) => {
      const { tenant: named, ...input } = req.body;
      const own = req.principal.tenant;
      if (named !== undefined && own !== PLATFORM_TENANT && named !== own)
        return sendProblem(reply, problem("invalid_request", "only a platform key (tenant *) may name another tenant", 400));
      const tenant = own === PLATFORM_TENANT ? (named ?? "default") : own;
      if (refuseWebhookUrls(reply, [["webhookUrl", input.webhookUrl], ...jobUrls(input.jobs)])) return reply;
      const out = await svc.create(tenant, {
        ...input,
        // The request's trace headers go to each job that names no trace context of its own.
        jobs: input.jobs.map((j) => ({ ...j, ...traceOf(j, req.headers), payload: j.payload ?? {} })),
      });
      if (!out.ok) return fail(reply, out);
      reply.header("location", `/v1/batches/${out.value.batch.id}`);
      return send(reply, [out.value.batch, out.value.counts], 201);
    },
  );

  app.post(
    "/v1/batches/:id/jobs",
    {
      onRequest: client,
      preValidation: tooManyJobs,
      bodyLimit: BATCH_BODY_LIMIT,
      schema: {
        tags,
        operationId: "addBatchJobs",
        summary: "Add jobs to a batch that is still preparing",
        description: "Up to 10,000 jobs per request (413 beyond). 409 once the batch is sealed.",
        params: IdParams,
        body: z.strictObject({ jobs: JobArray.min(1) }),
        headers: z.object(TraceHeaders),
        response: { 201: z.object({ added: z.number().int() }).meta({ id: "BatchJobsAdded" }), ...errors(404, 409, 413) },
      },
    },
    async (req, reply) => {
      if (refuseWebhookUrls(reply, jobUrls(req.body.jobs))) return reply;
      const out = await svc.addJobs(
        req.params.id,
        scope(req),
        req.body.jobs.map((j) => ({ ...j, ...traceOf(j, req.headers), payload: j.payload ?? {} })),
      );
      if (!out.ok) return fail(reply, out);
      return reply.code(201).send(out.value);
    },
  );

  app.post(
    "/v1/batches/:id/seal",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "sealBatch",
        summary: "Seal a batch: its jobs become claimable (idempotent)",
        params: IdParams,
        body: z.strictObject({}).nullish(),
        response: { 200: BatchSchema, ...errors(404, 409) },
      },
    },
    async (req, reply) => {
      const out = await svc.seal(req.params.id, scope(req));
      if (!out.ok) return fail(reply, out);
      return send(reply, [out.value.batch, out.value.counts]);
    },
  );

  app.get(
    "/v1/batches/:id",
    {
      onRequest: client,
      schema: { tags, operationId: "getBatch", summary: "Get a batch with its job counts", params: IdParams, response: { 200: BatchSchema, ...errors(404) } },
    },
    async (req, reply) => {
      const out = await svc.get(req.params.id, scope(req));
      if (!out.ok) return fail(reply, out);
      return send(reply, [out.value.batch, out.value.counts]);
    },
  );

  app.get(
    "/v1/batches",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "listBatches",
        summary: "List batches, newest first (keyset pagination)",
        querystring: z.strictObject({
          status: z.enum(BATCH_STATUSES).optional(),
          ...PageQuery,
        }),
        response: {
          200: z.object({ items: z.array(BatchSchema), nextCursor: z.string().nullable() }).meta({ id: "BatchList" }),
          ...errors(),
        },
      },
    },
    async (req, reply) => {
      const { cursor, limit, status } = req.query;
      const page = await keysetPage(
        { cursor, limit },
        (after, n) => svc.list({ tenant: scope(req), status, limit: n, after }),
        (r) => r.cursor,
        ({ counts, cursor: _, ...b }) => batchDto(b, counts),
      );
      return page ?? sendProblem(reply, problem("invalid_request", "malformed cursor", 400));
    },
  );

  app.post(
    "/v1/batches/:id/cancel",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "cancelBatch",
        summary: "Cancel a batch: queued jobs are cancelled, running ones asked to stop",
        params: IdParams,
        body: z.strictObject({}).nullish(),
        response: { 200: BatchSchema, ...errors(404, 409) },
      },
    },
    async (req, reply) => {
      const out = await svc.cancel(req.params.id, scope(req));
      if (!out.ok) return fail(reply, out);
      return send(reply, [out.value.batch, out.value.counts]);
    },
  );

  app.post(
    "/v1/batches/:id/retry",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "retryBatch",
        summary: "Requeue a finished batch's failed and cancelled jobs (attempts reset)",
        params: IdParams,
        body: z.strictObject({}).nullish(),
        response: { 200: BatchSchema, ...errors(404, 409) },
      },
    },
    async (req, reply) => {
      const out = await svc.retry(req.params.id, scope(req));
      if (!out.ok) return fail(reply, out);
      return send(reply, [out.value.batch, out.value.counts]);
    },
  );
}
