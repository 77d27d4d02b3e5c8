// Copies bench/results/latest.md into docs/performance.md between the bench markers, so every
// figure there comes from `npm run bench` output, never typed by hand.
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const ROOT = join(import.meta.dirname, "..");
const START = "<!-- bench:start -->";
const END = "<!-- bench:end -->";

export function updateReadme(): void {
  const readmePath = join(ROOT, "docs", "performance.md");
  const readme = readFileSync(readmePath, "utf8");
  const table = readFileSync(join(ROOT, "bench", "results", "latest.md"), "utf8").trim();
  const a = readme.indexOf(START);
  const b = readme.indexOf(END);
  if (a < 0 || b < a) throw new Error("docs/performance.md has no bench markers");
  const block = `${START}\n${table}\n\n![throughput](../bench/results/throughput.svg)\n${END}`;
  writeFileSync(readmePath, readme.slice(0, a) + block + readme.slice(b + END.length));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  updateReadme();
  process.stdout.write("docs/performance.md updated from bench/results/latest.md\n");
}
