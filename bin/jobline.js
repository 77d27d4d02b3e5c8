#!/usr/bin/env node
// Runs the compiled CLI (dist/, from `npm run build`; what the image ships) when present,
// else the TypeScript sources in-process through tsx, so a checkout needs no build step.
// JOBLINE_FROM_SOURCE=1 forces the sources (the tests set it, so a stale dist/ cannot hide a change).
import { existsSync } from "node:fs";

const compiled = new URL("../dist/cli.js", import.meta.url);
if (existsSync(compiled) && !process.env.JOBLINE_FROM_SOURCE) {
  await import(compiled.href);
} else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../src/cli.ts");
}
