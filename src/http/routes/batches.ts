import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { HttpDeps } from "../../container.js";
import { MAX_BATCH_JOBS } from "../../services/batches.js";
import { batchDto } from "../../services/representation.js";
import { otherTenantRefused, requireRole, type RoleHook, scope, writeTenant } from "../auth.js";
import { errors, fail, problem, sendProblem } from "../problem.js";
import { BatchAddJobsBody, BatchCreateBody, BatchListQuery, BatchSchema } from "../schemas/batches.js";
import { EmptyBody, IdParams } from "../schemas/common.js";
import type { Api } from "../types.js";
import { keysetPage, malformedCursor } from "../cursor.js";
import { pageSchema } from "../schemas/pages.js";
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

type Job = { webhookUrl?: string | undefined; traceparent?: string | undefined; tracestate?: string | undefined; payload?: unknown };
const jobUrls = (jobs: Job[]) => jobs.map((j, i): [string, string | undefined] => [`jobs[${i}].webhookUrl`, j.webhookUrl]);
/** The request's trace headers go to each job that names no trace context of its own. */
const traced = <J extends Job>(jobs: J[], headers: Parameters<typeof traceOf>[1]) =>
  jobs.map((j) => ({ ...j, ...traceOf(j, headers), payload: j.payload ?? {} }));

type BatchOutcome = { ok: true; value: { batch: Parameters<typeof batchDto>[0]; counts: Parameters<typeof batchDto>[1] } } | { ok: false; error: string; detail?: string | undefined };

/** A batch use case's outcome as the answer: the batch and its counts with its ETag, or the problem. */
function answerBatch(reply: FastifyReply, out: BatchOutcome, code = 200) {
  if (!out.ok) return fail(reply, out);
  const { batch, counts } = out.value;
  return reply.code(code).header("etag", `"${batch.version}"`).send(batchDto(batch, counts) satisfies z.input<typeof BatchSchema>);
}

interface Ctx {
  svc: HttpDeps["services"]["batches"];
  client: RoleHook;
}

const tags = ["batches"];

/** The batch routes; registered in this order, which is the OpenAPI document's. */
export async function batchRoutes(app: Api, c: HttpDeps) {
  const ctx: Ctx = { svc: c.services.batches, client: requireRole(c, "client") };
  registerCreate(app, ctx, webhookUrlGuard(c));
  registerAction(app, ctx, "seal", "sealBatch", "Seal a batch: its jobs become claimable (idempotent)");
  registerReads(app, ctx);
  registerAction(app, ctx, "cancel", "cancelBatch", "Cancel a batch: queued jobs are cancelled, running ones asked to stop");
  registerAction(app, ctx, "retry", "retryBatch", "Requeue a finished batch's failed and cancelled jobs (attempts reset)");
}

/** POST /v1/batches and POST /v1/batches/:id/jobs: the two that take job arrays. */
function registerCreate(app: Api, { svc, client }: Ctx, refuseWebhookUrls: ReturnType<typeof webhookUrlGuard>) {
  const jobArrayRoute = { onRequest: client, preValidation: tooManyJobs, bodyLimit: BATCH_BODY_LIMIT };
  app.post(
    "/v1/batches",
    {
      ...jobArrayRoute,
      schema: {
        tags,
        operationId: "createBatch",
        summary: "Create a batch of jobs; sealed at once unless `seal: false`",
        description:
          "Up to 10,000 jobs per request (413 beyond; body up to 32 MiB, each payload up to 256 KiB). With `seal: false` " +
          "the batch stays `preparing`: add jobs with POST /v1/batches/{id}/jobs, none is claimable until it is sealed.",
        body: BatchCreateBody,
        headers: z.object(TraceHeaders),
        response: { 201: BatchSchema, ...errors(413) },
      },
    },
    async (req, reply) => {
      const { tenant: named, ...input } = req.body;
      const tenant = writeTenant(req, named);
      if (tenant === null) return otherTenantRefused(reply);
      if (refuseWebhookUrls(reply, [["webhookUrl", input.webhookUrl], ...jobUrls(input.jobs)])) return reply;
      const out = await svc.create(tenant, { ...input, jobs: traced(input.jobs, req.headers) });
      if (out.ok) reply.header("location", `/v1/batches/${out.value.batch.id}`);
      return answerBatch(reply, out, 201);
    },
  );

  app.post(
    "/v1/batches/:id/jobs",
    {
      ...jobArrayRoute,
      schema: {
        tags,
        operationId: "addBatchJobs",
        summary: "Add jobs to a batch that is still preparing",
        description: "Up to 10,000 jobs per request (413 beyond). 409 once the batch is sealed.",
        params: IdParams,
        body: BatchAddJobsBody,
        headers: z.object(TraceHeaders),
        response: { 201: z.object({ added: z.number().int() }).meta({ id: "BatchJobsAdded" }), ...errors(404, 409, 413) },
      },
    },
    async (req, reply) => {
      if (refuseWebhookUrls(reply, jobUrls(req.body.jobs))) return reply;
      const out = await svc.addJobs(req.params.id, scope(req), traced(req.body.jobs, req.headers));
      if (!out.ok) return fail(reply, out);
      return reply.code(201).send(out.value);
    },
  );
}

/** POST /v1/batches/:id/{seal,cancel,retry}: no body, the batch with its counts as the answer. */
function registerAction(app: Api, { svc, client }: Ctx, action: "seal" | "cancel" | "retry", operationId: string, summary: string) {
  app.post(
    `/v1/batches/:id/${action}`,
    {
      onRequest: client,
      schema: { tags, operationId, summary, params: IdParams, body: EmptyBody, response: { 200: BatchSchema, ...errors(404, 409) } },
    },
    async (req, reply) => answerBatch(reply, await svc[action](req.params.id, scope(req))),
  );
}

/** GET /v1/batches/:id and GET /v1/batches. */
function registerReads(app: Api, { svc, client }: Ctx) {
  app.get(
    "/v1/batches/:id",
    {
      onRequest: client,
      schema: { tags, operationId: "getBatch", summary: "Get a batch with its job counts", params: IdParams, response: { 200: BatchSchema, ...errors(404) } },
    },
    async (req, reply) => answerBatch(reply, await svc.get(req.params.id, scope(req))),
  );

  app.get(
    "/v1/batches",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "listBatches",
        summary: "List batches, newest first (keyset pagination)",
        querystring: BatchListQuery,
        response: { 200: pageSchema(BatchSchema, "BatchList"), ...errors() },
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
      return page ?? malformedCursor(reply);
    },
  );
}
