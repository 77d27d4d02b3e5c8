import { z } from "zod";
import type { Container } from "../../container.js";
import { JOB_STATUSES } from "../../domain/jobs.js";
import { PLATFORM_TENANT } from "../../services/auth.js";
import { Tripwire } from "../../services/tripwire.js";
import { claimedJobDto, jobDto } from "../../services/representation.js";
import { requireRole, scope } from "../auth.js";
import { errors, fail, itemAnswer, problem, ProblemSchema, sendProblem } from "../problem.js";
import {
  IdParams,
  IfMatchHeaders,
  JsonValue,
  LeaseSeconds,
  Name,
  parseIfMatch,
  QueryTimestamp,
  safeText,
  Uuid,
  WorkerId,
} from "../schemas/common.js";
import { ClaimedJobSchema, CompleteItem, JobSchema, JobSubmitBody, ProgressInput } from "../schemas/jobs.js";
import type { Api } from "../types.js";
import { keysetPage, PageQuery } from "../cursor.js";
import { webhookUrlGuard } from "../webhookUrls.js";
import { TraceHeaders, traceOf } from "../traceHeaders.js";

export async function jobRoutes(app: Api, c: Container) {
  const svc = c.services.jobs;
  const client = requireRole(c, "client");
  const worker = requireRole(c, "worker");
  const tags = ["jobs"];
  const refuseWebhookUrls = webhookUrlGuard(c);

  app.post(
    "/v1/jobs",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "submitJob",
        summary: "Submit a job",
        body: JobSubmitBody,
        headers: z.object({ "idempotency-key": z.string().min(1).max(255).regex(/^[\x21-\x7e]+$/).optional(), ...TraceHeaders }),
        response: { 201: JobSchema, 200: JobSchema, ...errors(413, 422) },
      },
    },
    async (req, reply) => {
      const { tenant: named, ...input } = req.body;
      const own = req.principal.tenant;
      if (named !== undefined && own !== PLATFORM_TENANT && named !== own)
        return sendProblem(reply, problem("invalid_request", "only a platform key (tenant *) may name another tenant", 400));
      const tenant = own === PLATFORM_TENANT ? (named ?? "default") : own;
      if (refuseWebhookUrls(reply, [["webhookUrl", input.webhookUrl]])) return reply;
      const out = await svc.submit(tenant, { ...input, ...traceOf(input, req.headers), payload: input.payload ?? {} }, req.headers["idempotency-key"]);
      if (!out.ok) return fail(reply, out);
      reply.header("etag", `"${out.value.version}"`);
      if ("deduplicated" in out) reply.header("jobline-deduplicated", "true");
      if (out.replay) return reply.code(200).send(jobDto(out.value));
      return reply.code(201).header("location", `/v1/jobs/${out.value.id}`).send(jobDto(out.value));
    },
  );

  app.get(
    "/v1/jobs/:id",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "getJob",
        summary: "Get a job; with waitMs, once it is finished or the wait ends",
        params: IdParams,
        querystring: z.strictObject({
          waitMs: z.coerce
            .number()
            .int()
            .min(0)
            .max(30_000)
            .optional()
            .describe("Answer as soon as the job is finished (succeeded, failed, cancelled), or after this many ms with the job as it is then"),
        }),
        response: { 200: JobSchema, ...errors(404) },
      },
    },
    async (req, reply) => {
      const waitMs = req.query.waitMs ?? 0;
      let out: Awaited<ReturnType<typeof svc.get>>;
      if (waitMs === 0) out = await svc.get(req.params.id, scope(req));
      else {
        // The client went away: stop waiting (the answer would reach nobody).
        const gone = new Tripwire();
        reply.raw.once("close", () => gone.trip());
        out = await svc.getWhenFinished(req.params.id, scope(req), waitMs, gone);
      }
      if (!out.ok) return fail(reply, out);
      return reply.header("etag", `"${out.value.version}"`).send(jobDto(out.value));
    },
  );

  app.get(
    "/v1/jobs",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "listJobs",
        summary: "List jobs, newest first (keyset pagination)",
        querystring: z.strictObject({
          queue: Name.optional(),
          status: z.enum(JOB_STATUSES).optional(),
          kind: Name.optional(),
          batchId: Uuid.optional(),
          tag: safeText(64).optional(),
          createdAfter: QueryTimestamp.optional().describe("Only jobs created after this instant"),
          createdBefore: QueryTimestamp.optional().describe("Only jobs created before this instant"),
          ...PageQuery,
        }),
        response: {
          200: z.object({ items: z.array(JobSchema), nextCursor: z.string().nullable() }).meta({ id: "JobList" }),
          ...errors(),
        },
      },
    },
    async (req, reply) => {
      const { cursor, limit, ...filters } = req.query;
      const page = await keysetPage(
        { cursor, limit },
        (after, n) => svc.list({ ...filters, tenant: scope(req), limit: n, after }),
        (r) => ({ createdAt: r.cursorTs, id: r.id }),
        jobDto,
      );
      return page ?? sendProblem(reply, problem("invalid_request", "malformed cursor", 400));
    },
  );

  app.post(
    "/v1/jobs/:id/cancel",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "cancelJob",
        summary: "Cancel a job (queued → cancelled; running → cancelRequested)",
        params: IdParams,
        headers: IfMatchHeaders,
        body: z.strictObject({}).nullish(),
        response: { 200: JobSchema, ...errors(404, 409, 412) },
      },
    },
    async (req, reply) => {
      const out = await svc.cancel(req.params.id, scope(req), parseIfMatch(req.headers["if-match"]));
      if (!out.ok) return fail(reply, out);
      return reply.header("etag", `"${out.value.version}"`).send(jobDto(out.value));
    },
  );

  app.post(
    "/v1/jobs/:id/claim",
    {
      onRequest: worker,
      schema: {
        tags,
        operationId: "claimJob",
        summary: "Claim one specific queued job (optimistic with If-Match)",
        params: IdParams,
        headers: IfMatchHeaders,
        body: z.strictObject({ workerId: WorkerId, leaseSeconds: LeaseSeconds.optional() }),
        response: { 200: ClaimedJobSchema, ...errors(404, 409, 412) },
      },
    },
    async (req, reply) => {
      const out = await svc.claim(req.params.id, scope(req), {
        workerId: req.body.workerId,
        leaseSeconds: req.body.leaseSeconds ?? 60,
        version: parseIfMatch(req.headers["if-match"]),
      });
      if (!out.ok) return fail(reply, out);
      return reply.header("etag", `"${out.value.version}"`).send(claimedJobDto(out.value));
    },
  );

  app.post(
    "/v1/jobs/:id/heartbeat",
    {
      onRequest: worker,
      schema: {
        tags,
        operationId: "heartbeatJob",
        summary: "Extend the lease; learn whether a cancel was requested",
        params: IdParams,
        body: z.strictObject({ leaseToken: Uuid, leaseSeconds: LeaseSeconds.optional(), progress: ProgressInput.optional() }),
        response: {
          200: z
            .object({ leaseExpiresAt: z.string(), cancelRequested: z.boolean(), deadlineAt: z.string().nullable() })
            .meta({ id: "Heartbeat" }),
          ...errors(404, 409),
        },
      },
    },
    async (req, reply) => {
      const out = await svc.heartbeat(req.params.id, scope(req), req.body.leaseToken, req.body.leaseSeconds ?? 60, req.body.progress);
      if (!out.ok) return fail(reply, out);
      return {
        leaseExpiresAt: out.value.leaseExpiresAt!.toISOString(),
        cancelRequested: out.value.cancelRequested,
        deadlineAt: out.value.deadlineAt?.toISOString() ?? null,
      };
    },
  );

  app.post(
    "/v1/jobs/:id/complete",
    {
      onRequest: worker,
      schema: {
        tags,
        operationId: "completeJob",
        summary: "Complete a running job (idempotent for the same lease token)",
        params: IdParams,
        body: z.strictObject({ leaseToken: Uuid, result: JsonValue.optional() }),
        response: { 200: JobSchema, ...errors(404, 409) },
      },
    },
    async (req, reply) => {
      const out = await svc.complete(req.params.id, scope(req), req.body.leaseToken, req.body.result ?? null);
      if (!out.ok) return fail(reply, out);
      return reply.header("etag", `"${out.value.version}"`).send(jobDto(out.value));
    },
  );

  app.post(
    "/v1/jobs/complete",
    {
      onRequest: worker,
      schema: {
        tags,
        operationId: "completeJobs",
        summary: "Complete many running jobs in one statement; each item is answered on its own",
        body: z.strictObject({ items: z.array(CompleteItem).min(1).max(1000) }),
        response: {
          200: z
            .object({
              items: z.array(
                z.object({ id: z.uuid(), status: z.number().int(), job: JobSchema.optional(), problem: ProblemSchema.optional() }),
              ),
            })
            .meta({ id: "CompleteManyResult" }),
          ...errors(),
        },
      },
    },
    async (req) => {
      const out = await svc.completeMany(scope(req), req.body.items);
      return { items: out.map(({ id, outcome }) => itemAnswer(id, outcome, jobDto)) };
    },
  );

  app.post(
    "/v1/jobs/:id/fail",
    {
      onRequest: worker,
      schema: {
        tags,
        operationId: "failJob",
        summary: "Report a failure: retried with backoff while attempts remain",
        params: IdParams,
        body: z.strictObject({
          leaseToken: Uuid,
          error: z.strictObject({ message: z.string().max(10_000), code: z.string().max(200).optional() }).refine(
            (e) => JsonValue.safeParse(e).success,
            "contains characters PostgreSQL cannot store",
          ),
          retryable: z.boolean().default(true),
          retryAfterSeconds: z.number().min(0).max(31_536_000).optional(),
        }),
        response: { 200: JobSchema, ...errors(404, 409) },
      },
    },
    async (req, reply) => {
      const out = await svc.fail(req.params.id, scope(req), req.body);
      if (!out.ok) return fail(reply, out);
      return reply.header("etag", `"${out.value.version}"`).send(jobDto(out.value));
    },
  );
}
