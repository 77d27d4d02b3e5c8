// Builds dist/ with the package's own TypeScript: `npm pack` works from a fresh copy of this
// folder alone. Without typescript or openapi-fetch in reach (no install ran here or in a
// parent), it installs this package's dependencies first, with the ordinary npm client.
import { execFileSync } from "node:child_process";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const here = fileURLToPath(new URL("..", import.meta.url));
const require = createRequire(new URL("../package.json", import.meta.url));
const tsc = () => {
  try {
    require.resolve("openapi-fetch");
    return require.resolve("typescript/bin/tsc");
  } catch {
    return null;
  }
};
let bin = tsc();
if (!bin) {
  process.stderr.write("@jobline/client: typescript or openapi-fetch not installed here; running npm install first\n");
  const npm = process.env.npm_execpath;
  const args = ["install", "--no-save", "--no-package-lock", "--ignore-scripts", "--no-audit", "--no-fund", "--include=dev"];
  if (npm) execFileSync(process.execPath, [npm, ...args], { cwd: here, stdio: ["ignore", 2, 2] });
  else execFileSync("npm", args, { cwd: here, stdio: ["ignore", 2, 2] });
  bin = tsc();
  if (!bin) throw new Error("@jobline/client: npm install did not provide typescript");
}
execFileSync(process.execPath, [bin, "-p", "tsconfig.json"], { cwd: here, stdio: ["ignore", 2, 2] });
