// The public API, called with the key the user entered (sessionStorage, this tab only).

const KEY_STORAGE = "jobline.apiKey";

export class ApiError extends Error {
  constructor(status, code, detail) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
  }
}

export function getKey() {
  try {
    return sessionStorage.getItem(KEY_STORAGE) || "";
  } catch {
    return "";
  }
}

export function setKey(key) {
  if (key) sessionStorage.setItem(KEY_STORAGE, key);
  else sessionStorage.removeItem(KEY_STORAGE);
  tenants.clear();
}

export async function api(path, { method = "GET", body } = {}) {
  const key = getKey();
  if (!key) throw new ApiError(401, "unauthorized", "no API key");
  const headers = { Authorization: `Bearer ${key}`, Accept: "application/json" };
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let res;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), cache: "no-store", credentials: "omit" });
  } catch (e) {
    throw new ApiError(0, "network", `network error: ${e?.message ?? e}`);
  }
  const text = await res.text();
  let parsed = null;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch {
    parsed = null;
  }
  if (!res.ok) throw new ApiError(res.status, parsed?.code, typeof parsed?.detail === "string" ? parsed.detail : res.statusText);
  return parsed;
}

export const qs = (params) => {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== "") p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : "";
};

export function describeError(err) {
  if (!(err instanceof ApiError)) return String(err?.message ?? err);
  if (err.status === 0) return err.message;
  return `${err.status}${err.code ? ` ${err.code}` : ""}: ${err.message}`;
}

// Tenants seen in answers: only a platform key (tenant *) sees more than one, and then every
// list shows a tenant column so two tenants' same-named queues are never taken for one.
const tenants = new Set();
export function noteTenants(items) {
  for (const it of items || []) if (typeof it?.tenant === "string") tenants.add(it.tenant);
}
export const multiTenant = () => tenants.size > 1;
export const tenantList = () => [...tenants].sort();

// Job statuses as the server knows them (the keys of a queue's counts), so `waiting` appears
// in the filters once the server has it.
let statuses = ["queued", "running", "succeeded", "failed", "cancelled"];
export function noteStatuses(counts) {
  if (counts && typeof counts === "object") {
    const keys = Object.keys(counts);
    if (keys.length) statuses = keys;
  }
}
export const jobStatuses = () => statuses;
export const FINISHED = ["succeeded", "failed", "cancelled"];
