import { execFile } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { afterAll, describe, expect, it } from "vitest";

// postgres.js 3.4.9 kills the process when a buffered write meets a connection that has just
// closed (porsager/postgres#1154); patches/postgres+3.4.9.patch guards it (and adds the hooks of
// src/db/gate.ts), applied by patch-package at install. The behaviour is exercised by test/e2e/worker-pg-restart.test.ts, which crashed the
// API about one run in two without the guard once claims and completes shared statements.
const exec = promisify(execFile);
const ROOT = join(import.meta.dirname, "..", "..");
const PATCH_PACKAGE = join(ROOT, "node_modules", "patch-package", "index.js");
const FILES = ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js"];
const installed = dirname(dirname(fileURLToPath(import.meta.resolve("postgres"))));
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A throw-away project holding a copy of the installed driver and the committed patches. */
function project(): string {
  const d = mkdtempSync(join(tmpdir(), "jobline-patch-"));
  dirs.push(d);
  cpSync(installed, join(d, "node_modules", "postgres"), { recursive: true });
  cpSync(join(ROOT, "patches"), join(d, "patches"), { recursive: true });
  writeFileSync(join(d, "package.json"), JSON.stringify({ name: "patch-check", version: "1.0.0", private: true }));
  return d;
}
const patchPackage = (cwd: string, ...args: string[]) =>
  exec(process.execPath, [PATCH_PACKAGE, ...args], { cwd, timeout: 60_000 }).then(
    (r) => ({ code: 0, output: r.stdout + r.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, output: e.stdout + e.stderr }),
  );

describe("the installed postgres.js driver", () => {
  it("carries jobline's null-socket guard in every build it ships", () => {
    for (const f of FILES) expect(readFileSync(join(installed, f), "utf8"), f).toContain("/* jobline: null-socket guard */");
  });

  it("is patched at install by patch-package, failing the install when a patch does not apply", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: Record<string, string>; dependencies: Record<string, string> };
    expect(pkg.scripts.postinstall).toBe("patch-package --error-on-fail");
    // The postinstall runs in production installs too (`npm ci --omit=dev`): as a devDependency
    // patch-package is absent there, and the install stops with "patch-package: not found".
    expect(pkg.dependencies["patch-package"]).toBeDefined();
  });

  it("the committed patch applies to the pristine release", async () => {
    const d = project();
    expect((await patchPackage(d, "--reverse")).code).toBe(0);
    for (const f of FILES) expect(readFileSync(join(d, "node_modules", "postgres", f), "utf8")).not.toContain("null-socket guard");
    const applied = await patchPackage(d, "--error-on-fail");
    expect(applied.code, applied.output).toBe(0);
    for (const f of FILES) expect(readFileSync(join(d, "node_modules", "postgres", f), "utf8")).toContain("null-socket guard");
    for (const f of [...FILES, "src/index.js", "cjs/src/index.js", "cf/src/index.js"])
      expect(readFileSync(join(d, "node_modules", "postgres", f), "utf8"), f).toContain("/* jobline: gate */");
  });

  it("a driver whose code moved makes the install fail", async () => {
    const d = project();
    await patchPackage(d, "--reverse");
    const file = join(d, "node_modules", "postgres", "src", "connection.js");
    writeFileSync(file, readFileSync(file, "utf8").replace("  function nextWrite(fn) {", "  function nextWrite(fn, moved) {"));
    const out = await patchPackage(d, "--error-on-fail");
    expect(out.code).not.toBe(0);
    expect(out.output).toContain("postgres");
  });

  it("carries the hooks of src/db/gate.ts (the pool asks the gate first; a cancelled first query frees its connection)", () => {
    const root = dirname(dirname(fileURLToPath(import.meta.resolve("postgres"))));
    for (const f of ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js", "src/index.js", "cjs/src/index.js", "cf/src/index.js"])
      expect(readFileSync(join(root, f), "utf8"), f).toContain("/* jobline: gate */");
  });

  it("catches the type lookup of a new connection (lost as PostgreSQL shuts down, it was an unhandled rejection)", () => {
    const root = dirname(dirname(fileURLToPath(import.meta.resolve("postgres"))));
    for (const f of ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js"])
      expect(readFileSync(join(root, f), "utf8"), f).toContain("/* jobline: types lookup guard */");
  });
});
