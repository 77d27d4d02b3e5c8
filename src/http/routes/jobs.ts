import type { FastifyReply } from "fastify";
import { z } from "zod";
import type { HttpDeps } from "../../container.js";
import { Tripwire } from "../../services/tripwire.js";
import { claimedJobDto, jobDto } from "../../services/representation.js";
import { otherTenantRefused, requireRole, type RoleHook, scope, writeTenant } from "../auth.js";
import { errors, fail, itemAnswer, ProblemSchema } from "../problem.js";
import { EmptyBody, IdParams, IfMatchHeaders, parseIfMatch } from "../schemas/common.js";
import {
  ClaimBody,
  ClaimedJobSchema,
  CompleteBody,
  CompleteManyBody,
  FailBody,
  HeartbeatBody,
  JobListQuery,
  JobSchema,
  JobSubmitBody,
  JobWaitQuery,
  SubmitHeaders,
} from "../schemas/jobs.js";
import type { Api } from "../types.js";
import { keysetPage, malformedCursor } from "../cursor.js";
import { pageSchema } from "../schemas/pages.js";
import { webhookUrlGuard } from "../webhookUrls.js";
import { traceOf } from "../traceHeaders.js";

type JobRow = Parameters<typeof jobDto>[0];
type JobOutcome = { ok: true; value: JobRow } | { ok: false; error: string; detail?: string | undefined };

/**
 * A job use case's outcome as the answer: the job with its ETag, or the outcome's problem.
 * `dto` is typed by JobSchema, as a typed reply's send would check it.
 */
export function answerJob(reply: FastifyReply, out: JobOutcome, dto: (r: JobRow) => z.input<typeof JobSchema> = jobDto) {
  return out.ok ? reply.header("etag", `"${out.value.version}"`).send(dto(out.value)) : fail(reply, out);
}

interface Ctx {
  svc: HttpDeps["services"]["jobs"];
  client: RoleHook;
  worker: RoleHook;
}

const tags = ["jobs"];

/** The job lifecycle routes; registered in this order, which is the OpenAPI document's. */
export async function jobRoutes(app: Api, c: HttpDeps) {
  const ctx: Ctx = { svc: c.services.jobs, client: requireRole(c, "client"), worker: requireRole(c, "worker") };
  registerSubmit(app, ctx, webhookUrlGuard(c));
  registerReads(app, ctx);
  registerCancelAndClaim(app, ctx);
  registerHeartbeat(app, ctx);
  registerCompletion(app, ctx);
}

/** POST /v1/jobs. */
function registerSubmit(app: Api, { svc, client }: Ctx, refuseWebhookUrls: ReturnType<typeof webhookUrlGuard>) {
  app.post(
    "/v1/jobs",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "submitJob",
        summary: "Submit a job",
        body: JobSubmitBody,
        headers: SubmitHeaders,
        response: { 201: JobSchema, 200: JobSchema, ...errors(413, 422) },
      },
    },
    async (req, reply) => {
      const { tenant: named, ...input } = req.body;
      const tenant = writeTenant(req, named);
      if (tenant === null) return otherTenantRefused(reply);
      if (refuseWebhookUrls(reply, [["webhookUrl", input.webhookUrl]])) return reply;
      const out = await svc.submit(tenant, { ...input, ...traceOf(input, req.headers), payload: input.payload ?? {} }, req.headers["idempotency-key"]);
      if (!out.ok) return fail(reply, out);
      reply.header("etag", `"${out.value.version}"`);
      if ("deduplicated" in out) reply.header("jobline-deduplicated", "true");
      if (out.replay) return reply.code(200).send(jobDto(out.value));
      return reply.code(201).header("location", `/v1/jobs/${out.value.id}`).send(jobDto(out.value));
    },
  );
}

/** GET /v1/jobs/:id (optionally waiting for the finish) and GET /v1/jobs. */
function registerReads(app: Api, { svc, client }: Ctx) {
  app.get(
    "/v1/jobs/:id",
    {
      onRequest: client,
      schema: {
        tags,
        operationId: "getJob",
        summary: "Get a job; with waitMs, once it is finished or the wait ends",
        params: IdParams,
        querystring: JobWaitQuery,
        response: { 200: JobSchema, ...errors(404) },
      },
    },
    async (req, reply) => {
      const waitMs = req.query.waitMs ?? 0;
      if (waitMs === 0) return answerJob(reply, await svc.get(req.params.id, scope(req)));
      // The client went away: stop waiting (the answer would reach nobody).
      const gone = new Tripwire();
      reply.raw.once("close", () => gone.trip());
      return answerJob(reply, await svc.getWhenFinished(req.params.id, scope(req), waitMs, gone));
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
        querystring: JobListQuery,
        response: { 200: pageSchema(JobSchema, "JobList"), ...errors() },
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
      return page ?? malformedCursor(reply);
    },
  );
}

/** POST /v1/jobs/:id/cancel and /v1/jobs/:id/claim (both fenced by If-Match when given). */
function registerCancelAndClaim(app: Api, { svc, client, worker }: Ctx) {
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
        body: EmptyBody,
        response: { 200: JobSchema, ...errors(404, 409, 412) },
      },
    },
    async (req, reply) => answerJob(reply, await svc.cancel(req.params.id, scope(req), parseIfMatch(req.headers["if-match"]))),
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
        body: ClaimBody,
        response: { 200: ClaimedJobSchema, ...errors(404, 409, 412) },
      },
    },
    async (req, reply) => {
      const out = await svc.claim(req.params.id, scope(req), {
        workerId: req.body.workerId,
        leaseSeconds: req.body.leaseSeconds ?? 60,
        version: parseIfMatch(req.headers["if-match"]),
      });
      return answerJob(reply, out, claimedJobDto);
    },
  );
}

/** POST /v1/jobs/:id/heartbeat. */
function registerHeartbeat(app: Api, { svc, worker }: Ctx) {
  app.post(
    "/v1/jobs/:id/heartbeat",
    {
      onRequest: worker,
      schema: {
        tags,
        operationId: "heartbeatJob",
        summary: "Extend the lease; learn whether a cancel was requested",
        params: IdParams,
        body: HeartbeatBody,
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
}

/** The lease holder's reports: complete one, complete many, fail. */
function registerCompletion(app: Api, { svc, worker }: Ctx) {
  app.post(
    "/v1/jobs/:id/complete",
    {
      onRequest: worker,
      schema: {
        tags,
        operationId: "completeJob",
        summary: "Complete a running job (idempotent for the same lease token)",
        params: IdParams,
        body: CompleteBody,
        response: { 200: JobSchema, ...errors(404, 409) },
      },
    },
    async (req, reply) => answerJob(reply, await svc.complete(req.params.id, scope(req), req.body.leaseToken, req.body.result ?? null)),
  );

  app.post(
    "/v1/jobs/complete",
    {
      onRequest: worker,
      schema: {
        tags,
        operationId: "completeJobs",
        summary: "Complete many running jobs in one statement; each item is answered on its own",
        body: CompleteManyBody,
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
        body: FailBody,
        response: { 200: JobSchema, ...errors(404, 409) },
      },
    },
    async (req, reply) => answerJob(reply, await svc.fail(req.params.id, scope(req), req.body)),
  );
}
