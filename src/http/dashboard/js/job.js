// One job: summary, progress, timeline of attempts, error history, payload and result, and the
// operator's buttons (cancel, retry, delete). Fields a server does not send are not shown.
import { api, ApiError, describeError, FINISHED } from "./api.js";
import { badge, confirmDialog, el, formatTime, has, json, num, relative, statusBadge, table } from "./dom.js";

const FIELDS = [
  ["tenant", "Tenant"],
  ["queue", "Queue"],
  ["kind", "Kind"],
  ["priority", "Priority"],
  ["groupKey", "Group key"],
  ["workerId", "Worker"],
  ["idempotencyKey", "Idempotency key"],
  ["dedupeKey", "Dedupe key"],
  ["scheduleId", "Schedule"],
  ["timeoutSeconds", "Timeout (s)"],
];
const TIMES = [
  ["runAt", "Run at"],
  ["leaseExpiresAt", "Lease expires"],
  ["deadlineAt", "Deadline"],
  ["expiresAt", "Expires"],
];

function timeline(j) {
  const events = [{ at: j.createdAt, text: "created" }];
  for (const e of j.errors || []) events.push({ at: e.at, text: `attempt ${e.attempt} failed${e.code ? ` (${e.code})` : ""}: ${e.message}`, cls: "bad" });
  if (j.startedAt) events.push({ at: j.startedAt, text: `attempt ${num(j.attempts)} started` });
  if (j.finishedAt) events.push({ at: j.finishedAt, text: j.status, cls: j.status === "succeeded" ? "ok" : j.status === "failed" ? "bad" : "" });
  else if (j.status !== "running") events.push({ at: null, text: `now ${j.status}` });
  events.sort((a, b) => (a.at === null) - (b.at === null) || Date.parse(a.at) - Date.parse(b.at));
  return el(
    "ol",
    { class: "timeline", "data-role": "timeline" },
    events.map((e) => el("li", { class: e.cls || null }, el("time", { title: formatTime(e.at) }, e.at ? formatTime(e.at) : ""), " ", e.text)),
  );
}

function progress(p) {
  if (!p || typeof p !== "object") return null;
  const bar = el("div", { class: "progress", role: "progressbar", "aria-valuemin": 0, "aria-valuemax": 100 });
  if (typeof p.percent === "number") {
    const seg = el("div", { class: "seg succeeded" });
    seg.style.width = `${Math.max(0, Math.min(100, p.percent))}%`; // CSSOM, which the CSP allows
    bar.setAttribute("aria-valuenow", String(p.percent));
    bar.append(seg);
  }
  return el(
    "section",
    { "data-role": "progress" },
    el("h3", {}, "Progress", typeof p.percent === "number" ? ` ${p.percent}%` : ""),
    typeof p.percent === "number" ? bar : null,
    p.message ? el("p", {}, p.message) : null,
    p.at ? el("p", { class: "muted small", title: formatTime(p.at) }, `reported ${relative(p.at)}`) : null,
    p.data !== undefined && p.data !== null ? json(p.data) : null,
  );
}

export function mount(root, _params, [id], { refresh: again, setStatus }) {
  const section = el("section", { id: "job", "data-testid": "job", "data-job-id": id });
  root.append(section);
  let finished = false;

  async function act(label, run) {
    try {
      await run();
      setStatus(`${label}: done`, "ok");
    } catch (err) {
      setStatus(`${label}: ${describeError(err)}`, "error");
    }
    await again();
  }

  function actions(j) {
    const btn = (action, label, cls, run) => {
      const b = el("button", { type: "button", "data-action": action, class: cls }, label);
      b.addEventListener("click", run);
      return b;
    };
    const out = [];
    if (!FINISHED.includes(j.status))
      out.push(btn("cancel", "Cancel", "", async () => (await confirmDialog("Cancel this job?", "Cancel job")) && act("cancel", () => api(`/v1/jobs/${id}/cancel`, { method: "POST" }))));
    if (j.status === "failed" || j.status === "cancelled")
      out.push(btn("retry", "Retry", "primary", () => act("retry", () => api(`/v1/jobs/${id}/retry`, { method: "POST" }))));
    if (FINISHED.includes(j.status))
      out.push(
        btn("delete", "Delete", "danger", async () => {
          if (!(await confirmDialog("Delete this job for good?", "Delete job"))) return;
          await act("delete", () => api(`/v1/jobs/${id}`, { method: "DELETE" }));
        }),
      );
    return el("div", { class: "toolbar", "data-role": "actions" }, out);
  }

  // Shown only when the job has parents or children (workflows, issue 28); a server without
  // GET /dependents answers 404, which leaves just the parents.
  async function dependents(j) {
    const d = await api(`/v1/jobs/${id}/dependents`).catch(() => null);
    const children = Array.isArray(d) ? d : (d?.items ?? []);
    const parents = [...(j.dependsOn?.jobs ?? []).map((p) => ["job", p]), ...(j.dependsOn?.batches ?? []).map((p) => ["batch", p])];
    if (!parents.length && !children.length && !num(j.pendingDependencies)) return null;
    const link = (href, text) => el("a", { href, class: "mono" }, text);
    return el(
      "section",
      { "data-role": "dependencies" },
      el("h3", {}, "Dependencies"),
      has(j, "pendingDependencies") ? el("p", {}, `${num(j.pendingDependencies)} pending`) : null,
      parents.length
        ? el("p", {}, "Depends on: ", parents.map(([kind, p]) => [link(kind === "job" ? `#/job/${p}` : `#/jobs?batchId=${p}`, `${kind} ${p.slice(0, 8)}`), " "]))
        : null,
      children.length ? el("p", {}, "Dependents: ", children.map((x) => [link(`#/job/${x.id}`, x.id.slice(0, 8)), " "])) : null,
    );
  }

  async function refresh() {
    let j;
    try {
      j = await api(`/v1/jobs/${encodeURIComponent(id)}`);
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return section.replaceChildren(el("p", { class: "empty" }, `Job ${id} not found.`));
      throw err;
    }
    const dl = el(
      "dl",
      { class: "facts" },
      [...FIELDS, ...TIMES]
        .filter(([k]) => j[k] !== null && j[k] !== undefined)
        .map(([k, label]) => [el("dt", {}, label), el("dd", { class: "mono" }, TIMES.some(([t]) => t === k) ? `${formatTime(j[k])} (${relative(j[k])})` : String(j[k]))]),
      j.batchId ? [el("dt", {}, "Batch"), el("dd", {}, el("a", { class: "mono", href: `#/jobs?batchId=${j.batchId}` }, j.batchId))] : [],
      has(j, "tags") && j.tags.length ? [el("dt", {}, "Tags"), el("dd", {}, j.tags.map((t) => badge(t, "tag")))] : [],
    );
    const errors = j.errors || [];
    section.replaceChildren(
      el("h2", {}, "Job ", el("span", { class: "mono" }, j.id), " ", statusBadge(j.status), " ", el("small", {}, `attempt ${num(j.attempts)} of ${num(j.maxAttempts)}`)),
      actions(j),
      dl,
      progress(has(j, "progress") ? j.progress : null) ?? "",
      (await dependents(j)) ?? "",
      el("h3", {}, "Timeline"),
      timeline(j),
      el("h3", {}, `Errors (${errors.length})`),
      errors.length
        ? table(
            [{ label: "Attempt", num: true }, { label: "At" }, { label: "Code" }, { label: "Message" }],
            errors.map((e) => ({ cells: [e.attempt, formatTime(e.at), e.code ?? "", e.message] })),
            { "data-role": "errors" },
          )
        : el("p", { class: "empty" }, "No failed attempt."),
      el("h3", {}, "Payload"),
      json(j.payload),
      el("h3", {}, "Result"),
      json(j.result),
    );
    finished = FINISHED.includes(j.status);
  }
  // Polled while the job can still change; a finished job changes only by these buttons.
  return {
    refresh,
    get poll() {
      return !finished;
    },
  };
}
