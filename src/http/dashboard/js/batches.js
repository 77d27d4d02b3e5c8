// Batches: status filter, keyset pages, progress per batch and a link to its jobs.
import { api, multiTenant, noteTenants, qs } from "./api.js";
import { el, num, relative, statusBadge } from "./dom.js";

const STATUSES = ["preparing", "pending", "running", "succeeded", "failed", "partially_succeeded", "cancelled"];
const DONE = ["succeeded", "failed", "cancelled"];

function card(b, withTenant) {
  const c = b.counts || {};
  const total = num(b.total);
  const done = DONE.reduce((a, k) => a + num(c[k]), 0);
  const bar = el("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": total, "aria-valuenow": done, "aria-label": `batch ${b.id} progress` });
  for (const k of DONE) {
    const seg = el("div", { class: `seg ${k}`, title: `${num(c[k])} ${k}` });
    seg.style.width = `${total > 0 ? (num(c[k]) / total) * 100 : 0}%`;
    bar.append(seg);
  }
  return el(
    "div",
    { class: "batch", "data-batch-id": b.id },
    el(
      "div",
      { class: "batch-head" },
      el("a", { class: "mono", href: `#/jobs?batchId=${b.id}`, title: "this batch's jobs" }, b.id.slice(0, 8)),
      withTenant ? el("span", { class: "mono", "data-role": "tenant" }, b.tenant) : null,
      statusBadge(b.status),
      el("span", { "data-role": "done" }, `${done} / ${total}`),
    ),
    bar,
    el(
      "div",
      { class: "muted small" },
      `${num(c.succeeded)} succeeded \u00b7 ${num(c.failed)} failed \u00b7 ${num(c.cancelled)} cancelled \u00b7 ${num(c.running)} running \u00b7 ${num(c.queued)} queued \u00b7 created ${relative(b.createdAt)}`,
    ),
  );
}

export function mount(root, params) {
  const status = params.status ?? "any";
  const select = el("select", { name: "status", "aria-label": "Batch status" }, el("option", { value: "" }, "any"), STATUSES.map((s) => el("option", { value: s, selected: s === status }, s)));
  select.addEventListener("change", () => {
    location.hash = `#/batches${qs({ status: select.value || "any" })}`;
  });
  const list = el("div");
  const more = el("button", { type: "button", "data-page": "next" }, "More");
  more.addEventListener("click", () => load(true));
  root.append(el("section", { id: "batches", "data-testid": "batches" }, el("h2", {}, "Batches ", select), list, el("div", { class: "pager" }, more)));
  let next = null;
  let items = [];

  async function load(append = false) {
    const r = await api(`/v1/batches${qs({ status: status === "any" ? undefined : status, cursor: append ? next : undefined, limit: 50 })}`);
    items = append ? [...items, ...(r?.items ?? [])] : (r?.items ?? []);
    next = r?.nextCursor ?? null;
    noteTenants(items);
    const withTenant = multiTenant();
    list.replaceChildren(...(items.length ? items.map((b) => card(b, withTenant)) : [el("p", { class: "empty" }, "No batches.")]));
    more.disabled = !next;
  }
  // Polling reloads the first page only; "More" pages stay until the next poll.
  return { refresh: () => load(false), poll: true };
}
