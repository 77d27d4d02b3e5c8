import { z } from "zod";
import type { Container } from "../../container.js";
import { Tripwire } from "../../services/cancel.js";
import { claimedJobDto } from "../../services/representation.js";
import { requireRole, scope } from "../auth.js";
import { errors, itemAnswer, ProblemSchema } from "../problem.js";
import { ClaimedJobSchema, CompleteItem, LeaseSeconds, Name, WorkerId } from "../schemas.js";
import type { Api } from "../types.js";

export async function processNextRoutes(app: Api, c: Container) {
  app.post(
    "/v1/process-next",
    {
      onRequest: requireRole(c, "worker"),
      schema: {
        tags: ["workers"],
        operationId: "processNext",
        summary: "Lease up to `max` claimable jobs; long-polls up to `waitMs` when none is ready",
        description:
          "`complete` acknowledges jobs this worker finished, as POST /v1/jobs/complete would (same fencing, same events), " +
          "in the same request: the completions and the first claim are one statement, and each completion is answered on its own in " +
          "`completed`, in order. Completions are committed whether or not the poll then waits or finds jobs; sending the " +
          "same request again replays them. If that statement fails, their items are answered 503 (database " +
          "unavailable or a deadlock) or 500, to be sent again, and the poll returns at once with no jobs (none was leased).",
        body: z.strictObject({
          queues: z.array(Name).min(1).max(50),
          kinds: z.array(Name).max(100).optional(),
          workerId: WorkerId,
          max: z.number().int().min(1).max(100).default(1),
          leaseSeconds: LeaseSeconds.default(60),
          waitMs: z.number().int().min(0).max(30_000).default(0),
          complete: z.array(CompleteItem).max(100).optional(),
        }),
        response: {
          200: z
            .object({
              jobs: z.array(ClaimedJobSchema),
              completed: z
                .array(z.object({ id: z.uuid(), status: z.number().int(), problem: ProblemSchema.optional() }))
                .optional()
                .describe("Present when the request carried `complete`: one answer per item, in order (200: succeeded)"),
            })
            .meta({ id: "ProcessNextResult" }),
          ...errors(),
        },
      },
    },
    async (req, reply) => {
      // A client that disconnects ends its long poll, so no job is leased to nobody. The
      // response's close (not the request's, which Node emits once the body is read) is the
      // connection going away before we answered.
      const gone = new Tripwire();
      const onClose = () => {
        if (!reply.raw.writableFinished) gone.trip();
      };
      reply.raw.once("close", onClose);
      try {
        const { complete, ...poll } = req.body;
        const input = { ...poll, scope: scope(req), signal: gone };
        if (!complete) return { jobs: (await c.services.jobs.claimNext(input)).map(claimedJobDto) };
        const out = await c.services.jobs.claimNextAndComplete(input, complete);
        if (out.failure?.expected) req.log.warn({ err: out.failure.error }, "acknowledgements in a poll failed; answered 503 per item");
        else if (out.failure) req.log.error({ err: out.failure.error }, "acknowledgements in a poll failed; answered 500 per item");
        return { jobs: out.jobs.map(claimedJobDto), completed: out.completed.map(({ id, outcome }) => itemAnswer(id, outcome)) };
      } finally {
        reply.raw.off("close", onClose);
      }
    },
  );
}
