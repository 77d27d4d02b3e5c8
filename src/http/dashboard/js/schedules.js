// Schedules: next run, last run, pause and resume (PATCH { paused }).
import { api, describeError, multiTenant, noteTenants, qs } from "./api.js";
import { badge, el, table, timeCell } from "./dom.js";

export function mount(root, _params, _args, { refresh: again, setStatus }) {
  const list = el("div");
  const more = el("button", { type: "button", "data-page": "next" }, "More");
  more.addEventListener("click", () => load(true));
  root.append(el("section", { id: "schedules", "data-testid": "schedules" }, el("h2", {}, "Schedules"), list, el("div", { class: "pager" }, more)));
  let next = null;
  let items = [];

  async function toggle(s) {
    try {
      await api(`/v1/schedules/${s.id}`, { method: "PATCH", body: { paused: !s.paused } });
      setStatus(`${s.paused ? "resumed" : "paused"} ${s.name}`, "ok");
    } catch (err) {
      setStatus(`${s.name}: ${describeError(err)}`, "error");
    }
    await again();
  }

  async function load(append = false) {
    const r = await api(`/v1/schedules${qs({ cursor: append ? next : undefined, limit: 50 })}`);
    items = append ? [...items, ...(r?.items ?? [])] : (r?.items ?? []);
    next = r?.nextCursor ?? null;
    noteTenants(items);
    const withTenant = multiTenant();
    const columns = [
      { label: "Name" },
      ...(withTenant ? [{ label: "Tenant" }] : []),
      { label: "Cron" },
      { label: "Job" },
      { label: "State" },
      { label: "Next run" },
      { label: "Last run" },
      { label: "" },
    ];
    const rows = items.map((s) => {
      const b = el("button", { type: "button", "data-action": s.paused ? "resume" : "pause" }, s.paused ? "Resume" : "Pause");
      b.addEventListener("click", () => toggle(s));
      return {
        tr: el("tr", { "data-schedule-id": s.id, "data-paused": String(s.paused) }),
        cells: [
          el("td", { class: "mono" }, s.name),
          ...(withTenant ? [el("td", { class: "mono", "data-role": "tenant" }, s.tenant)] : []),
          el("td", { class: "mono" }, `${s.cron} (${s.timezone})`),
          el("td", { class: "mono" }, `${s.job?.queue ?? ""} / ${s.job?.kind ?? ""}`),
          s.paused ? badge("paused", "warn") : badge("active", "ok"),
          timeCell(s.nextRunAt, { "data-role": "next-run" }),
          s.lastJobId ? el("td", {}, el("a", { href: `#/job/${s.lastJobId}`, title: s.lastRunAt }, s.lastRunAt ? new Date(s.lastRunAt).toLocaleString() : "job")) : "\u2014",
          b,
        ],
      };
    });
    list.replaceChildren(rows.length ? table(columns, rows) : el("p", { class: "empty" }, "No schedules."));
    more.disabled = !next;
  }
  return { refresh: () => load(false), poll: true };
}
