// One queue's controls (GET/PUT /v1/queues/{queue}, pause, resume). A server without queue
// controls answers route_not_found: the page says so and shows nothing else.
import { api, ApiError, describeError, jobStatuses, qs } from "./api.js";
import { badge, el, num, table } from "./dom.js";

const LIMITS = [
  ["concurrency", "Concurrency (running at once)"],
  ["groupConcurrency", "Per groupKey"],
  ["defaultTimeoutSeconds", "Default timeout (s)"],
];

export function mount(root, _params, [tenant, queue], { refresh: again, setStatus }) {
  const path = (suffix = "") => `/v1/queues/${encodeURIComponent(queue)}${suffix}${qs({ tenant })}`;
  const head = el("h2", {}, "Queue ", el("span", { class: "mono" }, queue), " ", el("small", { class: "mono" }, `tenant ${tenant}`));
  const body = el("div");
  const section = el("section", { id: "queue", "data-testid": "queue", "data-queue": queue, "data-tenant": tenant }, head, body);
  root.append(section);
  let editing = false;

  async function act(run, what) {
    try {
      await run();
      setStatus(`${what}: done`, "ok");
    } catch (err) {
      setStatus(`${what}: ${describeError(err)}`, "error");
    }
    editing = false;
    await again();
  }

  function limitsForm(settings) {
    const input = (name, value) => el("input", { type: "number", min: 1, name, value: value ?? "", placeholder: "no limit", inputmode: "numeric" });
    const rate = settings.rateLimit || {};
    const form = el(
      "form",
      { class: "limits", "data-role": "limits" },
      LIMITS.map(([k, label]) => el("label", {}, label, input(k, settings[k]))),
      el("label", {}, "Rate: jobs", input("rateLimit", rate.limit)),
      el("label", {}, "per seconds", input("ratePeriod", rate.periodSeconds)),
      el("button", { type: "submit", class: "primary" }, "Save limits"),
    );
    form.addEventListener("focusin", () => {
      editing = true;
    });
    form.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const f = new FormData(form);
      const n = (k) => (f.get(k) === "" ? null : Number(f.get(k)));
      // PUT replaces the whole object: keep paused as it is.
      const next = { paused: settings.paused, concurrency: n("concurrency"), groupConcurrency: n("groupConcurrency"), defaultTimeoutSeconds: n("defaultTimeoutSeconds") };
      next.rateLimit = n("rateLimit") === null ? null : { limit: n("rateLimit"), periodSeconds: n("ratePeriod") ?? 1 };
      act(() => api(path(), { method: "PUT", body: next }), "save limits");
    });
    return form;
  }

  async function refresh() {
    if (editing) return;
    let q;
    try {
      q = await api(path());
    } catch (err) {
      if (err instanceof ApiError && err.status === 404 && err.code === "route_not_found") {
        body.replaceChildren(el("p", { class: "empty", "data-role": "unavailable" }, "This server has no queue controls (pause, resume, limits)."));
        return;
      }
      throw err;
    }
    const s = q.settings || {};
    const paused = !!s.paused;
    const toggle = el(
      "button",
      { type: "button", "data-action": paused ? "resume" : "pause", class: paused ? "primary" : "" },
      paused ? "Resume" : "Pause",
    );
    toggle.addEventListener("click", () => act(() => api(path(paused ? "/resume" : "/pause"), { method: "POST" }), paused ? "resume" : "pause"));
    const counts = q.counts || {};
    const statuses = Object.keys(counts).length ? Object.keys(counts) : jobStatuses();
    body.replaceChildren(
      el(
        "div",
        { class: "toolbar" },
        el("span", { "data-role": "state" }, paused ? badge("paused", "warn") : badge("active", "ok")),
        toggle,
        el("a", { href: `#/jobs${qs({ queue })}` }, "Jobs of this queue"),
      ),
      (q.waitingBecause || []).length ? el("p", {}, "Queued jobs wait because: ", q.waitingBecause.map((w) => badge(w, "warn"))) : "",
      table(statuses.map((st) => ({ label: st, num: true })), [{ cells: statuses.map((st) => num(counts[st])) }]),
      el("h3", {}, "Limits"),
      limitsForm(s),
    );
  }
  return { refresh, poll: true };
}
