import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

// postgres.js 3.4.9 kills the process when a buffered write meets a connection that has just
// closed (porsager/postgres#1154); scripts/patch-postgres.mjs guards it at install time. The
// behaviour is exercised by test/e2e/worker-pg-restart.test.ts, which crashed the API about
// one run in two without the guard once claims and completes shared statements.

describe("the installed postgres.js driver", () => {
  it("carries jobline's null-socket guard in every build it ships", () => {
    const root = dirname(dirname(fileURLToPath(import.meta.resolve("postgres"))));
    for (const f of ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js"])
      expect(readFileSync(join(root, f), "utf8"), f).toContain("/* jobline: null-socket guard */");
  });

  it("carries the hooks of src/db/gate.ts (the pool asks the gate first; a cancelled first query frees its connection)", () => {
    const root = dirname(dirname(fileURLToPath(import.meta.resolve("postgres"))));
    for (const f of ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js", "src/index.js", "cjs/src/index.js", "cf/src/index.js"])
      expect(readFileSync(join(root, f), "utf8"), f).toContain("/* jobline: gate */");
  });
});
