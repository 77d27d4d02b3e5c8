// DOM and formatting helpers. All API text goes through text nodes: nothing is parsed as HTML.

export const $ = (sel, root = document) => root.querySelector(sel);

/** An element; attrs become attributes (skipped when nullish or false), children text or nodes. */
export function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "onclick" || k === "onchange" || k === "onsubmit") node.addEventListener(k.slice(2), v);
    else if (v !== undefined && v !== null && v !== false) node.setAttribute(k, v === true ? "" : String(v));
  }
  for (const c of children.flat(Number.POSITIVE_INFINITY)) {
    if (c === undefined || c === null || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";
export function svgEl(tag, attrs, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  if (text !== undefined) node.textContent = String(text);
  return node;
}

export const num = (v) => (typeof v === "number" && Number.isFinite(v) ? v : 0);
export const has = (o, k) => o !== null && typeof o === "object" && Object.hasOwn(o, k) && o[k] !== undefined;

export function formatAge(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "\u2014";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h ${m % 60}m`;
  return `${Math.floor(h / 24)}d ${h % 24}h`;
}

export function formatTime(iso) {
  if (!iso) return "\u2014";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : d.toLocaleString();
}

/** "3m 2s ago" or "in 5m"; the absolute time goes in the title. */
export function relative(iso) {
  if (!iso) return "\u2014";
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return String(iso);
  const d = (Date.now() - t) / 1000;
  return d >= 0 ? `${formatAge(d)} ago` : `in ${formatAge(-d)}`;
}

export const timeCell = (iso, attrs = {}) => el("td", { ...attrs, title: formatTime(iso) }, relative(iso));

export const badge = (text, cls = "") => el("span", { class: `badge ${cls}`.trim(), "data-value": text }, text);
export const statusBadge = (s) => badge(s, `st-${s}`);

export function json(value) {
  return el("pre", { class: "json" }, value === undefined || value === null ? "\u2014" : JSON.stringify(value, null, 2));
}

/** A table whose cells carry their column name, so a narrow screen can show rows as cards. */
export function table(columns, rows, attrs = {}) {
  const head = el("tr", {}, columns.map((c) => el("th", { class: c.num ? "num" : null }, c.label)));
  const body = rows.map((r) => {
    const tr = r.tr ?? el("tr");
    columns.forEach((c, i) => {
      const cell = r.cells[i] instanceof Node && r.cells[i].tagName === "TD" ? r.cells[i] : el("td", {}, r.cells[i]);
      cell.dataset.label = c.label;
      if (c.num) cell.classList.add("num");
      tr.append(cell);
    });
    return tr;
  });
  return el("div", { class: "scroll" }, el("table", { class: "cards", ...attrs }, el("thead", {}, head), el("tbody", {}, body)));
}

/** A modal confirmation; resolves true when the user confirms. */
export function confirmDialog(message, action = "Confirm") {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = message;
  $("#confirm-ok").textContent = action;
  dialog.returnValue = "";
  dialog.showModal();
  return new Promise((resolve) => dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true }));
}
