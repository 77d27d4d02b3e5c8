import { readFileSync } from "node:fs";
import SwaggerParser from "@apidevtools/swagger-parser";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";

// Generators name methods after operationId and group them by tag; without them every
// generator invents names from paths (postV1JobsByIdComplete).
const committed = parse(readFileSync(new URL("../../openapi.yaml", import.meta.url), "utf8")) as {
  paths: Record<string, Record<string, { operationId?: string; tags?: string[] }>>;
};
const operations = Object.entries(committed.paths).flatMap(([path, ops]) => Object.entries(ops).map(([method, op]) => ({ key: `${method} ${path}`, op })));

/** The names clients call; renaming one breaks every generated client, so they are pinned here. */
const STABLE: Record<string, string> = {
  "post /v1/jobs": "submitJob",
  "get /v1/jobs/{id}": "getJob",
  "get /v1/jobs": "listJobs",
  "post /v1/jobs/{id}/cancel": "cancelJob",
  "post /v1/process-next": "processNext",
  "post /v1/jobs/{id}/claim": "claimJob",
  "post /v1/jobs/{id}/heartbeat": "heartbeatJob",
  "post /v1/jobs/{id}/complete": "completeJob",
  "post /v1/jobs/complete": "completeJobs",
  "post /v1/jobs/{id}/fail": "failJob",
  "post /v1/batches": "createBatch",
  "get /v1/batches": "listBatches",
  "get /v1/batches/{id}": "getBatch",
  "post /v1/batches/{id}/jobs": "addBatchJobs",
  "post /v1/batches/{id}/seal": "sealBatch",
  "post /v1/batches/{id}/cancel": "cancelBatch",
  "post /v1/batches/{id}/retry": "retryBatch",
  "get /v1/queues": "listQueues",
  "get /v1/queues/{queue}": "getQueue",
  "put /v1/queues/{queue}": "setQueueSettings",
  "post /v1/queues/{queue}/pause": "pauseQueue",
  "post /v1/queues/{queue}/resume": "resumeQueue",
};

describe("openapi.yaml for generators", () => {
  it("passes @apidevtools/swagger-parser validation", async () => {
    // validate() dereferences in place: give it a copy.
    await expect(SwaggerParser.validate(structuredClone(committed) as never)).resolves.toBeDefined();
  });

  it("gives every operation a unique camelCase operationId and a tag", () => {
    expect(operations.length).toBeGreaterThanOrEqual(27);
    const ids = operations.map(({ key, op }) => {
      expect(op.operationId, key).toMatch(/^[a-z][A-Za-z]+$/);
      expect(op.tags?.length, `${key} has no tag`).toBeGreaterThan(0);
      return op.operationId;
    });
    expect(new Set(ids).size).toBe(ids.length);
  });

  it("keeps the documented operationIds", () => {
    const byKey = Object.fromEntries(operations.map(({ key, op }) => [key, op.operationId]));
    for (const [key, id] of Object.entries(STABLE)) expect(byKey[key], key).toBe(id);
  });
});
