/**
 * A standalone horizontal bar chart as SVG, no dependencies (the README can embed it).
 * Bars are coloured by `group` when given, else by label prefix (jobline / ceiling / other).
 */
export function renderBarChart(rows: { label: string; value: number; group?: string }[], title: string): string {
  const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
  const palette = ["#2563eb", "#f59e0b", "#10b981", "#9ca3af", "#ef4444", "#8b5cf6"];
  const groupOf = (r: { label: string; group?: string }) =>
    r.group ?? (r.label.startsWith("jobline") ? "jobline" : r.label.startsWith("ceiling") ? "ceiling" : "other");
  const groups = [...new Set(rows.map(groupOf))];
  const colour = (g: string) =>
    g === "jobline" ? "#2563eb" : g === "ceiling" ? "#9ca3af" : g === "other" ? "#f59e0b" : palette[groups.indexOf(g) % palette.length]!;
  const barH = 22;
  const gap = 8;
  const labelW = Math.min(520, 40 + 6.6 * Math.max(10, ...rows.map((r) => r.label.length)));
  const plotW = 420;
  const top = 40;
  const max = Math.max(1, ...rows.map((r) => (Number.isFinite(r.value) ? r.value : 0)));
  const width = labelW + plotW + 100;
  const height = top + rows.length * (barH + gap) + 20;
  const fmt = (v: number) => (Number.isFinite(v) ? (v >= 100 ? Math.round(v) : Number(v.toFixed(2))).toLocaleString("en-US") : "n/a");
  const bars = rows.map((r, i) => {
    const y = top + i * (barH + gap);
    const w = Number.isFinite(r.value) ? Math.max(1, (Math.max(0, r.value) / max) * plotW) : 0;
    return [
      `<text x="${labelW - 8}" y="${y + barH * 0.7}" text-anchor="end">${esc(r.label)}</text>`,
      `<rect x="${labelW}" y="${y}" width="${w.toFixed(1)}" height="${barH}" fill="${colour(groupOf(r))}" rx="3"/>`,
      `<text x="${(labelW + w + 6).toFixed(1)}" y="${y + barH * 0.7}">${fmt(r.value)}</text>`,
    ].join("\n");
  });
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="white"/>
<text x="${width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${esc(title)}</text>
${bars.join("\n")}
</svg>
`;
}
