// Router, key form and refresh loop. Each view is mount(root, params) → { refresh, poll }.
import { api, ApiError, describeError, getKey, multiTenant, noteStatuses, noteTenants, setKey, tenantList } from "./api.js";
import { $ } from "./dom.js";
import * as batches from "./batches.js";
import * as job from "./job.js";
import * as jobs from "./jobs.js";
import * as queue from "./queue.js";
import * as queues from "./queues.js";
import * as schedules from "./schedules.js";

const REFRESH_MS = 5000;
const VIEWS = { queues, queue, jobs, job, batches, schedules };

let current = null;
let timer = null;
let busy = false;

export function setStatus(text, state = "info") {
  const s = $("#status");
  s.textContent = text || "";
  s.dataset.state = state;
}

/** #/jobs?queue=a → { view: "jobs", args: [], params: {queue: "a"} }; #/job/ID → args [ID]. */
function parseHash() {
  const [path, query] = (location.hash.replace(/^#\/?/, "") || "queues").split("?");
  const [view, ...args] = path.split("/").map(decodeURIComponent);
  return { view: VIEWS[view] ? view : "queues", args, params: Object.fromEntries(new URLSearchParams(query || "")) };
}

async function refresh() {
  if (!current || busy || !getKey()) return;
  busy = true;
  try {
    await current.refresh();
    setStatus(`updated ${new Date().toLocaleTimeString()}`, "ok");
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      setStatus("unauthorized: the API key was rejected; enter a valid key", "error");
    } else setStatus(describeError(err), "error");
  } finally {
    busy = false;
    showTenants();
  }
}

function showTenants() {
  $("#tenant-note").textContent = multiTenant() ? `all tenants (${tenantList().length})` : tenantList()[0] ? `tenant ${tenantList()[0]}` : "";
}

async function route() {
  const { view, args, params } = parseHash();
  for (const a of document.querySelectorAll("nav a")) a.classList.toggle("active", a.dataset.view === (view === "job" ? "jobs" : view === "queue" ? "queues" : view));
  const root = $("#view");
  root.replaceChildren();
  if (!getKey()) {
    setStatus("enter an API key to load data", "info");
    current = null;
    return;
  }
  setStatus("loading\u2026", "info");
  current = VIEWS[view].mount(root, params, args, { refresh, setStatus });
  await refresh();
}

function startPolling() {
  clearInterval(timer);
  timer = setInterval(() => {
    if (!document.hidden && current?.poll) refresh();
  }, REFRESH_MS);
}

/** Tenants and statuses are learnt once from the queue list, whatever page opens first. */
async function learn() {
  try {
    const q = await api("/v1/queues");
    noteTenants(q?.items);
    noteStatuses(q?.items?.[0]?.counts);
  } catch {
    /* the page's own refresh reports errors */
  }
}

$("#key-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const key = $("#api-key").value.trim();
  if (!key) return setStatus("enter an API key", "error");
  setKey(key);
  await learn();
  route();
});
$("#forget-key").addEventListener("click", () => {
  setKey("");
  $("#api-key").value = "";
  setStatus("API key forgotten; enter a key to load data", "info");
  $("#view").replaceChildren();
  current = null;
});
$("#confirm").addEventListener("cancel", () => {
  $("#confirm").returnValue = "";
});
window.addEventListener("hashchange", route);
document.addEventListener("visibilitychange", () => {
  if (!document.hidden) refresh();
});

if (getKey()) {
  $("#api-key").value = getKey();
  await learn();
}
startPolling();
route();
