// Stacked bar charts drawn as inline SVG (no chart library): one bar per week, one colour per series.
import { h, svg } from "./core.js";

const H = 180;
const PAD = { left: 34, right: 8, top: 10, bottom: 26 };

/** A figure with a stacked bar chart of ``series`` ({label: [count per week]}), its legend and a text summary;
 * ``W``: the drawing's width in pixels, about the width it is shown at, so that its labels stay readable. */
export function barChart(title, weeks, series, label = (s) => s, W = 560) {
  const names = Object.keys(series);
  const totals = weeks.map((_, i) => names.reduce((sum, name) => sum + series[name][i], 0));
  const top = Math.max(1, ...totals);
  const plotW = W - PAD.left - PAD.right;
  const plotH = H - PAD.top - PAD.bottom;
  const slot = plotW / Math.max(1, weeks.length);
  const barW = Math.max(2, Math.min(28, slot * 0.7));
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const parts = [
    svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(0), y2: y(0), class: "axis" }),
    svg("text", { x: PAD.left - 6, y: y(top) + 4, class: "tick", "text-anchor": "end" }, String(top)),
    svg("text", { x: PAD.left - 6, y: y(0), class: "tick", "text-anchor": "end" }, "0"),
  ];
  const every = Math.ceil(weeks.length / 6);
  weeks.forEach((week, i) => {
    const x = PAD.left + i * slot + (slot - barW) / 2;
    let base = 0;
    names.forEach((name, k) => {
      const v = series[name][i];
      if (!v) return;
      parts.push(svg("rect", { x, width: barW, y: y(base + v), height: y(base) - y(base + v), class: "s" + (k % 7) },
        svg("title", {}, `${label(name)}: ${v} in the week of ${week}`)));
      base += v;
    });
    if (i % every === 0) parts.push(svg("text", { x: x + barW / 2, y: H - 8, class: "tick", "text-anchor": "middle" }, week.slice(5)));
  });
  const sum = totals.reduce((a, b) => a + b, 0);
  const summary = names.map((name) => `${label(name)} ${series[name].reduce((a, b) => a + b, 0)}`).join(", ");
  return h("figure", { class: "chart" },
    h("figcaption", {}, title),
    svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": `${title}: ${sum} in ${weeks.length} weeks (${summary || "none"})`,
                 preserveAspectRatio: "xMidYMid meet" }, parts),
    names.length ? h("ul", { class: "legend" }, names.map((name, k) => h("li", {}, h("span", { class: "swatch s" + (k % 7) }), `${label(name)} (${series[name].reduce((a, b) => a + b, 0)})`)))
      : h("p", { class: "muted" }, "none yet"));
}
