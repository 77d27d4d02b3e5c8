// Jobs finished per minute as stacked bars. Drawn at the container's real pixel width (viewBox
// = pixels), so labels stay 12 px on a phone instead of shrinking with a scaled drawing.
import { el, svgEl } from "./dom.js";

const MINUTE_MS = 60000;
const H = 220;
const PAD = { left: 44, right: 10, top: 12, bottom: 28 };
const KEYS = ["succeeded", "failed", "cancelled"];

function niceMax(n) {
  if (n <= 4) return 4;
  const mag = 10 ** Math.floor(Math.log10(n));
  for (const step of [1, 2, 2.5, 5, 10]) if (step * mag >= n) return step * mag;
  return 10 * mag;
}

/** Per-minute buckets for the last `minutes` minutes, oldest first. */
function buckets(items, minutes) {
  const byMinute = new Map();
  for (const it of items) {
    const t = Date.parse(it.minute);
    if (!Number.isNaN(t)) byMinute.set(Math.floor(t / MINUTE_MS), it);
  }
  const now = Math.floor(Date.now() / MINUTE_MS);
  return Array.from({ length: minutes }, (_, i) => {
    const m = now - minutes + 1 + i;
    const it = byMinute.get(m) || {};
    return { at: new Date(m * MINUTE_MS), succeeded: +it.succeeded || 0, failed: +it.failed || 0, cancelled: +it.cancelled || 0 };
  });
}

export function throughputChart(container, data, minutes = 60) {
  const slots = buckets(Array.isArray(data?.items) ? data.items : [], minutes);
  const W = Math.max(280, Math.floor(container.clientWidth || 600));
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const peak = Math.max(0, ...slots.map((s) => s.succeeded + s.failed + s.cancelled));
  const sum = slots.reduce((a, s) => a + s.succeeded + s.failed + s.cancelled, 0);
  const max = niceMax(peak);
  const y = (v) => PAD.top + plotH - (v / max) * plotH;
  const slotW = plotW / minutes;
  const svg = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: "img", "aria-label": `Jobs finished per minute, last ${minutes} minutes` });
  for (const v of [0, max / 2, max]) {
    svg.append(svgEl("line", { class: "axis", x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v) }));
    svg.append(svgEl("text", { class: "label", x: PAD.left - 6, y: y(v) + 4, "text-anchor": "end" }, Number.isInteger(v) ? v : v.toFixed(1)));
  }
  // One time label per ~70 px, on whole 5-minute steps, so they never overlap.
  const every = Math.max(5, Math.ceil((70 / slotW) / 5) * 5);
  slots.forEach((s, i) => {
    const x = PAD.left + i * slotW;
    const when = s.at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
    if (s.at.getMinutes() % every === 0)
      svg.append(svgEl("text", { class: "label", x: x + slotW / 2, y: H - 8, "text-anchor": "middle" }, when));
    const g = svgEl("g", { class: "bar" });
    g.append(svgEl("title", {}, `${when}: ${s.succeeded} succeeded, ${s.failed} failed, ${s.cancelled} cancelled`));
    g.append(svgEl("rect", { class: "hit", x, y: PAD.top, width: slotW, height: plotH }));
    let base = 0;
    for (const k of KEYS) {
      if (s[k] <= 0) continue;
      const top = y(base + s[k]);
      g.append(svgEl("rect", { class: k, x: x + slotW * 0.1, y: top, width: Math.max(1, slotW * 0.8), height: Math.max(1, y(base) - top) }));
      base += s[k];
    }
    svg.append(g);
  });
  if (sum === 0)
    svg.append(svgEl("text", { class: "label", x: PAD.left + plotW / 2, y: PAD.top + plotH / 2, "text-anchor": "middle" }, `no jobs finished in the last ${minutes} minutes`));
  svg.dataset.total = String(sum);
  const legend = el("div", { class: "legend" }, KEYS.map((k) => el("span", {}, el("i", { class: `sw-${k}` }), k)));
  container.replaceChildren(svg, legend);
  return { sum, peak };
}
