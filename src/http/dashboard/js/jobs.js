// Jobs: filters (queue, status, kind, tag, batch), keyset pages, selection and bulk actions.
import { api, describeError, jobStatuses, multiTenant, noteTenants, qs } from "./api.js";
import { badge, confirmDialog, el, has, num, statusBadge, table, timeCell } from "./dom.js";

const FILTERS = ["queue", "status", "kind", "tag", "batchId"];
const PAGE = 50;
const ACTIONS = [
  ["cancel", "Cancel"],
  ["retry", "Retry"],
  ["delete", "Delete"],
];

function filterForm(params) {
  const text = (name, label) => el("label", {}, label, el("input", { type: "text", name, value: params[name] ?? "", spellcheck: "false", autocomplete: "off" }));
  const status = el("select", { name: "status" }, el("option", { value: "" }, "any"), jobStatuses().map((s) => el("option", { value: s, selected: params.status === s }, s)));
  const form = el(
    "form",
    { class: "filters", id: "job-filters", role: "search" },
    text("queue", "Queue"),
    el("label", {}, "Status", status),
    text("kind", "Kind"),
    text("tag", "Tag"),
    params.batchId ? text("batchId", "Batch") : "",
    el("button", { type: "submit", class: "primary", id: "apply-filters" }, "Apply"),
    el("a", { href: "#/jobs", class: "button" }, "Clear"),
  );
  form.addEventListener("submit", (ev) => {
    ev.preventDefault();
    const f = new FormData(form);
    location.hash = `#/jobs${qs(Object.fromEntries(FILTERS.map((k) => [k, (f.get(k) ?? "").toString().trim()])))}`;
  });
  return form;
}

export function mount(root, params, _args, { setStatus }) {
  const filters = Object.fromEntries(FILTERS.filter((k) => params[k]).map((k) => [k, params[k]]));
  const cursors = [null]; // cursors[i] opens page i
  let page = 0;
  let next = null;
  let items = [];
  const selected = new Set();

  const count = el("span", { "data-role": "selected-count" }, "0 selected");
  const buttons = ACTIONS.map(([action, label]) => {
    const b = el("button", { type: "button", "data-bulk": action, disabled: true, class: action === "delete" ? "danger" : "" }, label);
    b.addEventListener("click", () => bulk(action, label));
    return b;
  });
  const toolbar = el("div", { class: "toolbar", "data-role": "bulk" }, count, buttons);
  const listBox = el("div");
  const prev = el("button", { type: "button", "data-page": "prev" }, "\u2190 Newer");
  const more = el("button", { type: "button", "data-page": "next" }, "Older \u2192");
  const pageNote = el("span", { class: "muted" });
  prev.addEventListener("click", () => go(page - 1));
  more.addEventListener("click", () => go(page + 1));
  root.append(
    el("section", { id: "jobs", "data-testid": "jobs" }, el("h2", {}, "Jobs"), filterForm(params), toolbar, listBox, el("div", { class: "pager" }, prev, pageNote, more)),
  );

  function syncSelection() {
    count.textContent = `${selected.size} selected`;
    for (const b of buttons) b.disabled = selected.size === 0;
  }

  async function bulk(action, label) {
    const ids = [...selected];
    if (!ids.length) return;
    const ok = await confirmDialog(`${label} ${ids.length} selected job${ids.length === 1 ? "" : "s"}?`, `${label} ${ids.length}`);
    if (!ok) return;
    try {
      const r = await api("/v1/jobs/bulk", { method: "POST", body: { action, ids } });
      setStatus(`${action}: ${r.matched} matched, ${r.changed} changed, ${r.skipped} skipped`, "ok");
    } catch (err) {
      setStatus(`${action}: ${describeError(err)}`, "error");
    }
    selected.clear();
    syncSelection();
    await load();
  }

  async function go(p) {
    if (p < 0 || (p > page && !next)) return;
    if (p > page) cursors[p] = next;
    page = p;
    selected.clear();
    syncSelection();
    await load();
  }

  function render() {
    const withTenant = multiTenant();
    const all = el("input", { type: "checkbox", "aria-label": "Select all on this page", "data-role": "select-all" });
    all.checked = items.length > 0 && items.every((j) => selected.has(j.id));
    all.addEventListener("change", () => {
      for (const j of items) all.checked ? selected.add(j.id) : selected.delete(j.id);
      syncSelection();
      render();
    });
    const columns = [
      { label: "" },
      { label: "Job" },
      ...(withTenant ? [{ label: "Tenant" }] : []),
      { label: "Queue" },
      { label: "Kind" },
      { label: "Status" },
      { label: "Attempts", num: true },
      { label: "Created" },
      { label: "Detail" },
    ];
    const rows = items.map((j) => {
      const box = el("input", { type: "checkbox", "aria-label": `Select job ${j.id}`, "data-job-id": j.id });
      box.checked = selected.has(j.id);
      box.addEventListener("change", () => {
        box.checked ? selected.add(j.id) : selected.delete(j.id);
        syncSelection();
      });
      const detail = [
        j.lastError?.message ? el("span", { class: "error-msg", title: j.lastError.message }, j.lastError.message) : null,
        typeof j.progress?.percent === "number" ? el("span", { class: "muted", "data-role": "progress" }, ` ${j.progress.percent}%`) : null,
        has(j, "tags") ? j.tags.map((t) => badge(t, "tag")) : null,
        has(j, "pendingDependencies") && j.pendingDependencies > 0 ? badge(`${j.pendingDependencies} pending deps`, "warn") : null,
      ];
      return {
        tr: el("tr", { "data-job-id": j.id, "data-status": j.status }),
        cells: [
          box,
          el("td", { class: "mono" }, el("a", { href: `#/job/${j.id}` }, j.id.slice(0, 8))),
          ...(withTenant ? [el("td", { class: "mono", "data-role": "tenant" }, j.tenant)] : []),
          el("td", { class: "mono" }, j.queue),
          el("td", { class: "mono" }, j.kind),
          statusBadge(j.status),
          j.maxAttempts ? `${num(j.attempts)}/${num(j.maxAttempts)}` : num(j.attempts),
          timeCell(j.createdAt),
          detail,
        ],
      };
    });
    listBox.replaceChildren(rows.length ? table(columns, rows) : el("p", { class: "empty" }, "No jobs match."));
    const head = listBox.querySelector("th");
    if (head) head.replaceChildren(all);
    prev.disabled = page === 0;
    more.disabled = !next;
    pageNote.textContent = `page ${page + 1}`;
  }

  async function load() {
    const r = await api(`/v1/jobs${qs({ ...filters, limit: PAGE, cursor: cursors[page] ?? undefined })}`);
    items = r?.items ?? [];
    next = r?.nextCursor ?? null;
    noteTenants(items);
    render();
  }
  return { refresh: load, poll: false };
}
