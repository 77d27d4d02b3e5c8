// The e2e helpers in one import: processes, the webhook receiver, until(), and api() for raw HTTP calls.
export { until } from "../../helpers/until.js";
export * from "./processes.js";
export * from "./receiver.js";

export async function api(base: string, key: string, method: string, path: string, body?: unknown) {
  const r = await fetch(base + path, {
    method,
    headers: { authorization: key.startsWith("Bearer ") ? key : `Bearer ${key}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await r.text();
  let json: unknown = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    json = text;
  }
  // biome-ignore lint/suspicious/noExplicitAny: test convenience
  return { status: r.status, headers: r.headers, body: json as any };
}
