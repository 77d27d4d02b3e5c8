// Loaded with `node --import`: records every module specifier the process resolves into the file
// named by TRACE_IMPORTS_FILE, so a test can say what a command did not load.
import { register } from "node:module";

register(
  `data:text/javascript,${encodeURIComponent(`
import { appendFileSync } from "node:fs";
const file = ${JSON.stringify(process.env.TRACE_IMPORTS_FILE)};
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(file, r.url + "\\n");
  return r;
}`)}`,
);
