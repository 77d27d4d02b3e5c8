// Writes openapi.yaml from the route schemas (no database needed: routes are only registered).
import { writeFileSync } from "node:fs";
import { renderOpenApi } from "../src/http/openapi.js";

writeFileSync(new URL("../openapi.yaml", import.meta.url), await renderOpenApi());
process.stdout.write("openapi.yaml written\n");
