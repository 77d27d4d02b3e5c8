// npm run build: compiles src/ to JavaScript (dist/, or the directory given) with tsc, and copies
// the files the code reads at run time. bin/jobline.js runs dist/cli.js when it exists.
import { execFileSync } from "node:child_process";
import { cpSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";

const root = resolve(import.meta.dirname, "..");
const out = resolve(root, process.argv[2] ?? "dist");
rmSync(out, { recursive: true, force: true });
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc");
execFileSync(process.execPath, [tsc, "-p", resolve(root, "tsconfig.build.json"), "--outDir", out], { stdio: "inherit" });
cpSync(resolve(root, "src/http/dashboard"), resolve(out, "http/dashboard"), { recursive: true });
