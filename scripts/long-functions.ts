// Lists the functions in src/ longer than a limit (issue 24: "no function over about 80 lines").
// Usage: npx tsx scripts/long-functions.ts [maxLines=80] [dir=src]
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import ts from "typescript";

const max = Number(process.argv[2] ?? 80);
const root = process.argv[3] ?? "src";

function* files(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) yield* files(p);
    else if (/\.tsx?$/.test(e.name) && !e.name.endsWith(".d.ts")) yield p;
  }
}

/** A readable name: the declaration's, else the variable, property or call it sits in. */
function nameOf(n: ts.Node): string {
  const named = n as ts.Node & { name?: ts.Node };
  if (named.name && ts.isIdentifier(named.name)) return named.name.text;
  const p = n.parent;
  if (ts.isVariableDeclaration(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p)) return p.name.getText();
  if (ts.isCallExpression(p)) return `<callback of ${p.expression.getText().slice(0, 40)}>`;
  return "<anonymous>";
}

const found: Array<{ at: string; name: string; lines: number }> = [];
for (const file of files(root)) {
  const sf = ts.createSourceFile(file, readFileSync(file, "utf8"), ts.ScriptTarget.Latest, true);
  const visit = (n: ts.Node) => {
    if (ts.isFunctionLike(n) && "body" in n && n.body) {
      const start = sf.getLineAndCharacterOfPosition(n.getStart(sf)).line;
      const end = sf.getLineAndCharacterOfPosition(n.getEnd()).line;
      if (end - start + 1 > max) found.push({ at: `${relative(".", file)}:${start + 1}`, name: nameOf(n), lines: end - start + 1 });
    }
    ts.forEachChild(n, visit);
  };
  visit(sf);
}
found.sort((a, b) => b.lines - a.lines);
for (const f of found) process.stdout.write(`${String(f.lines).padStart(5)}  ${f.name}  ${f.at}\n`);
process.stdout.write(`${found.length} function(s) over ${max} lines in ${root}/\n`);
