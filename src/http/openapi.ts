import { stringify } from "yaml";
import { testConfig } from "../config.js";
import { createContainer } from "../container.js";
import { buildApp } from "./app.js";

/** The OpenAPI document as the server serves it, rendered to YAML; the container never connects. */
export async function renderOpenApi(): Promise<string> {
  const c = createContainer(testConfig(), "postgres://unused@127.0.0.1:1/unused");
  const app = await buildApp(c);
  await app.ready();
  const doc = app.swagger();
  await app.close();
  await c.close();
  return stringify(doc, { lineWidth: 0 });
}
