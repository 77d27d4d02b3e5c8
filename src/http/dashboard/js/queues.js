// Queues: counts per (tenant, queue), why queued jobs wait, and jobs finished per minute.
import { api, jobStatuses, multiTenant, noteStatuses, noteTenants, qs } from "./api.js";
import { throughputChart } from "./chart.js";
import { badge, el, formatAge, has, num, table } from "./dom.js";

export function mount(root) {
  const list = el("section", { id: "queues", "data-testid": "queues" }, el("h2", {}, "Queues"));
  const body = el("div");
  list.append(body);
  const chartBox = el("div", { class: "chart" });
  const summary = el("small");
  const chart = el("section", { id: "throughput", "data-testid": "throughput" }, el("h2", {}, "Jobs finished per minute ", summary), chartBox);
  root.append(list, chart);
  let last = null;
  const onResize = () => last && throughputChart(chartBox, last);
  window.addEventListener("resize", onResize);

  async function refresh() {
    if (!root.isConnected) return window.removeEventListener("resize", onResize);
    const [q, t] = await Promise.all([api("/v1/queues"), api("/v1/stats/throughput?minutes=60")]);
    const items = q?.items ?? [];
    noteTenants(items);
    noteStatuses(items[0]?.counts);
    const statuses = jobStatuses();
    const withTenant = multiTenant();
    const columns = [
      ...(withTenant ? [{ label: "Tenant" }] : []),
      { label: "Queue" },
      ...statuses.map((s) => ({ label: s, num: true })),
      { label: "Oldest queued", num: true },
      { label: "Waiting because" },
    ];
    const rows = items.map((it) => {
      const counts = it.counts || {};
      const jobsLink = (s) =>
        el("a", { href: `#/jobs${qs({ queue: it.queue, status: s })}`, "data-status": s }, num(counts[s]));
      return {
        tr: el("tr", { "data-queue": it.queue, "data-tenant": it.tenant }),
        cells: [
          ...(withTenant ? [el("td", { class: "mono", "data-role": "tenant" }, it.tenant)] : []),
          el("td", { class: "mono" }, el("a", { href: `#/queue/${encodeURIComponent(it.tenant)}/${encodeURIComponent(it.queue)}` }, it.queue)),
          ...statuses.map((s) => jobsLink(s)),
          formatAge(it.oldestQueuedAgeSeconds),
          has(it, "waitingBecause") ? it.waitingBecause.map((w) => badge(w, "warn")) : "",
        ],
      };
    });
    body.replaceChildren(rows.length ? table(columns, rows) : el("p", { class: "empty" }, "No queues yet."));
    last = t;
    const { sum, peak } = throughputChart(chartBox, t);
    summary.textContent = `${sum} in the last 60 minutes, peak ${peak}/min`;
  }
  return { refresh, poll: true };
}
