// Patches postgres.js 3.4.9 (the newest release) against an upstream bug that
// kills the process: after a connection closes, a buffered write runs
// `socket.write` on a null socket from a setImmediate, an uncatchable TypeError
// (porsager/postgres#1154, #1208; fix proposed in #1168, #1209, not released).
// jobline must ride out a PostgreSQL restart, so the write is settled as a
// CONNECTION_CLOSED error on the queries that waited for it, and teardown
// forgets the cancelled timer so a reconnected socket flushes again.
// Idempotent; run by `postinstall` and by .ci/run. test/unit/postgres-patch.test.ts checks it.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const MARK = "/* jobline: null-socket guard */";
// The package's exports hide package.json; resolve its ESM entry (src/index.js) instead.
const root = dirname(dirname(fileURLToPath(import.meta.resolve("postgres"))));
const files = ["src/connection.js", "cjs/src/connection.js", "cf/src/connection.js"].map((f) => join(root, f));

const edits = [
  [
    "  function nextWrite(fn) {\n",
    `  function nextWrite(fn) {\n    ${MARK}\n    if (socket === null) {\n      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n      chunk = nextWriteTimer = null\n      error(Errors.connection('CONNECTION_CLOSED', options))\n      return false\n    }\n`,
  ],
  ["    clearImmediate(nextWriteTimer)\n    if (socket) {", "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    if (socket) {"],
  ["    clearImmediate(nextWriteTimer)\n    socket.removeListener('data', data)", "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    socket.removeListener('data', data)"],
];

// Only the release this was written against: another version may have the fix, or other
// text; then warn (test/unit/postgres-driver.test.ts will say the guard is missing) rather
// than fail the install.
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
if (version !== "3.4.9") {
  console.warn(`patch-postgres: postgres ${version} is not 3.4.9; not patched (check whether it still needs the guard)`);
  process.exit(0);
}

let patched = 0;
for (const file of files) {
  let text = readFileSync(file, "utf8");
  if (text.includes(MARK)) continue;
  for (const [from, to] of edits) {
    if (!text.includes(from)) throw new Error(`patch-postgres: ${file} does not look like postgres 3.4.9 (missing ${JSON.stringify(from.slice(0, 40))})`);
    text = text.replace(from, to);
  }
  writeFileSync(file, text);
  patched++;
}
console.log(`patch-postgres: ${patched} file(s) patched, ${files.length - patched} already patched`);
