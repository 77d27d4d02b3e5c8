import { readFileSync } from "node:fs";
import openapiTS, { astToString, COMMENT_HEADER } from "openapi-typescript";
import { describe, expect, it } from "vitest";

const root = new URL("../../", import.meta.url);

/**
 * The SDK's types are generated from the committed openapi.yaml (`npm run generate:sdk`,
 * the same openapi-typescript call as here). After a route change run
 * `npm run openapi && npm run generate:sdk` and commit both files.
 */
describe("TypeScript SDK types", () => {
  it("clients/typescript/src/schema.gen.ts is what openapi-typescript generates from openapi.yaml", async () => {
    const generated = `${COMMENT_HEADER}${astToString(await openapiTS(new URL("openapi.yaml", root), { silent: true }))}`;
    const committed = readFileSync(new URL("clients/typescript/src/schema.gen.ts", root), "utf8");
    const a = committed.split("\n");
    const b = generated.split("\n");
    const line = a.findIndex((l, i) => l !== b[i]);
    expect(
      committed === generated,
      `schema.gen.ts is stale (first difference at line ${line + 1}: committed ${JSON.stringify(a[line])}, generated ${JSON.stringify(b[line])}): run \`npm run openapi && npm run generate:sdk\` and commit both files`,
    ).toBe(true);
  });

  it("covers every path of openapi.yaml", async () => {
    const yaml = readFileSync(new URL("openapi.yaml", root), "utf8");
    const committed = readFileSync(new URL("clients/typescript/src/schema.gen.ts", root), "utf8");
    const paths = [...yaml.matchAll(/^ {2}(\/[^:\s]*):\s*$/gm)].map((m) => m[1]);
    expect(paths.length).toBeGreaterThan(5);
    for (const p of paths) expect(committed, `path ${p}`).toContain(`"${p}": {`);
  });
});
