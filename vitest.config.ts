import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    globalSetup: ["./test/helpers/globalSetup.ts"],
    include: ["test/**/*.test.ts"],
    // bin/jobline.js runs dist/ when built; the tests drive the sources (a stale dist/ must not hide a change).
    env: { JOBLINE_FROM_SOURCE: "1" },
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 120_000,
    teardownTimeout: 30_000,
    fileParallelism: true,
    maxWorkers: 3,
  },
});
