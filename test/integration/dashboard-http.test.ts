import { describe, expect, it } from "vitest";
import { submitJob, useTestEnv } from "../helpers/app.js";

const t = useTestEnv("dashboard_http");

describe("dashboard serving and the queue list it reads", () => {
  it("serves the page and its modules with a CSP that allows no inline script or style", async () => {
    const page = await t.env.http().get("/dashboard");
    expect(page.status).toBe(200);
    const csp = page.headers["content-security-policy"] as string;
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("style-src 'self'");
    expect(csp).not.toContain("unsafe-inline");
    expect(page.headers["x-content-type-options"]).toBe("nosniff");
    expect(page.headers["x-frame-options"]).toBe("DENY");
    expect(page.headers["referrer-policy"]).toBe("no-referrer");
    expect(page.text).not.toMatch(/<script>|<style>|\sstyle=/);
    for (const f of ["js/main.js", "js/jobs.js", "js/job.js", "app.css"]) {
      const r = await t.env.http().get(`/dashboard/${f}`);
      expect(r.status, f).toBe(200);
      expect(r.headers["content-security-policy"]).toBe(csp);
    }
    expect((await t.env.http().get("/dashboard/../package.json")).status).toBe(404);
    // The API and /docs keep their own headers.
    const api = await t.env.http().get("/v1/queues").set("authorization", t.env.admin);
    expect(api.headers["content-security-policy"]).toBeUndefined();
  });

  it("lists two tenants' same-named queues apart for a platform key, one for a tenant key", async () => {
    for (const tenant of ["acme", "acme", "globex"]) await submitJob(t.env, t.env.admin, { tenant, queue: "shared", kind: "k" });
    const all = await t.env.http().get("/v1/queues").set("authorization", t.env.admin);
    const shared = (all.body.items as { tenant: string; queue: string; counts: { queued: number } }[]).filter((q) => q.queue === "shared");
    expect(shared.map((q) => [q.tenant, q.counts.queued]).sort()).toEqual([["acme", 2], ["globex", 1]]);
    const own = await t.env.http().get("/v1/queues").set("authorization", t.client);
    expect(own.body.items).toEqual([expect.objectContaining({ tenant: "acme", queue: "shared", counts: expect.objectContaining({ queued: 2 }) })]);
  });
});
