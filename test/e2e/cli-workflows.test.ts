import { describe, expect, it } from "vitest";
import { useCliServer } from "./helpers/cliServer.js";

const srv = useCliServer("cli_workflows");
const { cli, api } = srv;

// `jobline submit --depends-on / --depends-on-batches` (docs/cli.md, docs/workflows.md) through a running server.
type Job = { id: string; status: string; dependsOn: { jobs: string[]; batches: string[] } | null; pendingDependencies: number };

describe("jobline submit --depends-on", () => {
  it("submits a job waiting on jobs and a batch; an unknown parent is a 404 with a non-zero exit", async () => {
    const a = JSON.parse((await cli(["submit", "--queue", "cliwf", "--kind", "a"])).stdout) as Job;
    const b = JSON.parse((await cli(["submit", "--queue", "cliwf", "--kind", "b"])).stdout) as Job;
    const batch = await api("POST", "/v1/batches", { jobs: [{ queue: "cliwf", kind: "c" }] });
    expect(batch.status, JSON.stringify(batch.body)).toBe(201);
    const batchId = batch.body.id as string;
    const out = await cli(["submit", "--queue", "cliwf2", "--kind", "d", "--depends-on", `${a.id}, ${b.id}`, "--depends-on-batches", batchId]);
    const d = JSON.parse(out.stdout) as Job;
    expect(d).toMatchObject({ status: "waiting", pendingDependencies: 3 });
    expect([...d.dependsOn!.jobs].sort()).toEqual([a.id, b.id].sort());
    expect(d.dependsOn!.batches).toEqual([batchId]);
    const dependents = await api("GET", `/v1/jobs/${a.id}/dependents`);
    expect((dependents.body.items as Job[]).map((j) => j.id)).toEqual([d.id]);
    await expect(cli(["submit", "--queue", "cliwf2", "--kind", "e", "--depends-on", "00000000-0000-4000-8000-000000000000"])).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringContaining("404"),
    });
  });
});
