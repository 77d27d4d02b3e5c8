// Patches postgres.js 3.4.9 (the newest release) against an upstream bug that
// kills the process: after a connection closes, a buffered write runs
// `socket.write` on a null socket from a setImmediate, an uncatchable TypeError
// (porsager/postgres#1154, #1208; fix proposed in #1168, #1209, not released).
// jobline must ride out a PostgreSQL restart, so the write is settled as a
// CONNECTION_CLOSED error on the queries that waited for it, and teardown
// forgets the cancelled timer so a reconnected socket flushes again.
// Two more edits serve src/db/gate.ts (a deadline and a fail-fast while PostgreSQL is away):
// the pool's query handler first asks `options.gate(query)`, which may refuse the query, and a
// query cancelled while it waited for a connection being opened no longer leaves that
// connection stuck in `connecting` (upstream assumes the first query always runs).
// Idempotent; run by `postinstall` and by .ci/run. test/unit/postgres-driver.test.ts checks it.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const MARK = "/* jobline: null-socket guard */";
// The package's exports hide package.json; resolve its ESM entry (src/index.js) instead.
const root = dirname(dirname(fileURLToPath(import.meta.resolve("postgres"))));
const builds = ["src", "cjs/src", "cf/src"];
const GATE = "/* jobline: gate */";

const edits = [
  [
    "  function nextWrite(fn) {\n",
    `  function nextWrite(fn) {\n    ${MARK}\n    if (socket === null) {\n      nextWriteTimer !== null && clearImmediate(nextWriteTimer)\n      chunk = nextWriteTimer = null\n      error(Errors.connection('CONNECTION_CLOSED', options))\n      return false\n    }\n`,
  ],
  ["    clearImmediate(nextWriteTimer)\n    if (socket) {", "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    if (socket) {"],
  ["    clearImmediate(nextWriteTimer)\n    socket.removeListener('data', data)", "    clearImmediate(nextWriteTimer)\n    chunk = nextWriteTimer = null\n    socket.removeListener('data', data)"],
  [
    "      initial && !initial.reserve && execute(initial)\n",
    `      ${GATE}\n      if (initial && !initial.reserve && initial.cancelled) {\n        options.shared.retries = retries = 0\n        initial = null\n        return onopen(connection)\n      }\n      initial && !initial.reserve && execute(initial)\n`,
  ],
];
const indexEdits = [["  function handler(query) {\n", `  function handler(query) {\n    ${GATE}\n    if (options.gate && options.gate(query))\n      return\n`]];

// Only the release this was written against: another version may have the fix, or other
// text; then warn (test/unit/postgres-driver.test.ts will say the guard is missing) rather
// than fail the install.
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;
if (version !== "3.4.9") {
  console.warn(`patch-postgres: postgres ${version} is not 3.4.9; not patched (check whether it still needs the guard)`);
  process.exit(0);
}

let patched = 0;
let total = 0;
/** Applies each edit whose result is not in the file yet (a file patched by an older script gets the newer edits). */
for (const [name, fileEdits] of [["connection.js", edits], ["index.js", indexEdits]]) {
  for (const build of builds) {
    const file = join(root, build, name);
    let text = readFileSync(file, "utf8");
    let changed = false;
    total++;
    for (const [from, to] of fileEdits) {
      if (text.includes(to)) continue;
      if (!text.includes(from)) throw new Error(`patch-postgres: ${file} does not look like postgres 3.4.9 (missing ${JSON.stringify(from.slice(0, 40))})`);
      text = text.replace(from, to);
      changed = true;
    }
    if (!changed) continue;
    writeFileSync(file, text);
    patched++;
  }
}
console.log(`patch-postgres: ${patched} file(s) patched, ${total - patched} already patched`);
