import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { HttpDeps } from "../../container.js";
import type { WorkerRow } from "../../repositories/jobs/rows.js";
import { Tripwire } from "../../services/tripwire.js";
import { fullClaimedJobDto, workerJobDto } from "../../services/representation.js";
import { requireRole, scope } from "../auth.js";
import { errors, itemAnswer, ProblemSchema } from "../problem.js";
import { ClaimedJobSchema, ProcessNextBody, WorkerJobSchema } from "../schemas/jobs.js";
import type { Api } from "../types.js";

const ProcessNextResult = z
  .object({
    jobs: z.array(z.union([ClaimedJobSchema, WorkerJobSchema])).describe('ClaimedJob each, or WorkerJob each with `fields: "worker"`'),
    completed: z
      .array(z.object({ id: z.uuid(), status: z.number().int(), problem: ProblemSchema.optional() }))
      .optional()
      .describe("Present when the request carried `complete`: one answer per item, in order (200: succeeded)"),
  })
  .meta({ id: "ProcessNextResult" });

const DESCRIPTION =
  "`complete` acknowledges jobs this worker finished, as POST /v1/jobs/complete would (same fencing, same events), " +
  "in the same request: the completions and the first claim are one statement, and each completion is answered on its own in " +
  "`completed`, in order. Completions are committed whether or not the poll then waits or finds jobs; sending the " +
  "same request again replays them. If that statement fails, their items are answered 503 (database " +
  "unavailable or a deadlock) or 500, to be sent again, and the poll returns at once with no jobs (none was leased). " +
  '`fields: "worker"` answers each job with only the fields a worker needs (WorkerJob), a third of the bytes.';

/**
 * A client that disconnects ends its long poll, so no job is leased to nobody. The response's
 * close (not the request's, which Node emits once the body is read) is the connection going
 * away before we answered. Jobs already leased to this answer when it goes away undelivered
 * (closed before the response was written) are released at once.
 */
function watchDelivery(c: HttpDeps, req: FastifyRequest, reply: FastifyReply) {
  const gone = new Tripwire();
  let leased: WorkerRow[] = [];
  const release = () => {
    const rows = leased;
    leased = [];
    if (rows.length === 0) return;
    c.services.undelivered.release(rows).catch((e: unknown) => req.log.warn({ err: e }, "could not release the jobs of an undelivered poll; the reaper will"));
  };
  // Delivered: the whole answer went to the OS while the connection stood. Node emits
  // 'finish' also when a reset connection dropped the unwritten rest, so the socket decides.
  const socket = req.raw.socket;
  let delivered = false;
  reply.raw.once("finish", () => {
    delivered = !socket.destroyed;
  });
  reply.raw.once("close", () => {
    if (delivered) return;
    gone.trip();
    release();
  });
  /** The rows this answer carries; released at once if the client is gone already. */
  const deliver = <R extends WorkerRow>(jobs: R[]) => {
    leased = jobs;
    if (gone.aborted) release();
    return jobs;
  };
  return { gone, deliver };
}

export async function processNextRoutes(app: Api, c: HttpDeps) {
  app.post(
    "/v1/process-next",
    {
      onRequest: requireRole(c, "worker"),
      schema: {
        tags: ["workers"],
        operationId: "processNext",
        summary: "Lease up to `max` claimable jobs; long-polls up to `waitMs` when none is ready",
        description: DESCRIPTION,
        body: ProcessNextBody,
        response: { 200: ProcessNextResult, ...errors() },
      },
    },
    async (req, reply) => {
      const { gone, deliver } = watchDelivery(c, req, reply);
      const { complete, ...poll } = req.body;
      // Worker fields: the claim returns only the worker's columns (repositories/jobs/rows.ts).
      const dto = poll.fields === "worker" ? workerJobDto : fullClaimedJobDto;
      const input = { ...poll, scope: scope(req), signal: gone };
      if (!complete) return { jobs: deliver(await c.services.jobs.claimNext(input)).map(dto) };
      const out = await c.services.jobs.claimNextAndComplete(input, complete);
      if (out.failure?.expected) req.log.warn({ err: out.failure.error }, "acknowledgements in a poll failed; answered 503 per item");
      else if (out.failure) req.log.error({ err: out.failure.error }, "acknowledgements in a poll failed; answered 500 per item");
      return { jobs: deliver(out.jobs).map(dto), completed: out.completed.map(({ id, outcome }) => itemAnswer(id, outcome)) };
    },
  );
}
