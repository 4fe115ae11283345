// A small SVG line chart for live series (rates, lag): a fixed window of the
// latest points, redrawn on each push. Enough for the console; no library needed.

const NS = "http://www.w3.org/2000/svg";
/** Points kept per series: two minutes at one reading a second. */
export const WINDOW_POINTS = 120;
const WIDTH = 600, HEIGHT = 160, LEFT = 48, BOTTOM = 18, TOP = 8;
const COLORS = ["#0969da", "#1a7f37", "#bf3989", "#9a6700", "#8250df", "#cf222e"];

function svg(tag, attrs) {
  const el = document.createElementNS(NS, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  return el;
}

/** A chart of `names` series; `format` labels the y axis. */
export function lineChart(names, { format = String, label = "chart" } = {}) {
  const root = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": label, preserveAspectRatio: "none" });
  const legend = document.createElement("div");
  legend.className = "legend";
  let series = names.map((name, i) => ({ name, color: COLORS[i % COLORS.length], values: [] }));
  const wrap = document.createElement("div");
  wrap.append(root, legend);
  function drawLegend() {
    legend.replaceChildren(...series.map((s) => {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = s.color;
      const last = s.values.length ? s.values[s.values.length - 1] : null;
      item.append(swatch, `${s.name}${last === null ? "" : `: ${format(last)}`}`);
      return item;
    }));
  }
  function draw() {
    root.replaceChildren();
    const max = Math.max(1, ...series.flatMap((s) => s.values));
    const plotW = WIDTH - LEFT, plotH = HEIGHT - BOTTOM - TOP;
    root.append(svg("line", { x1: LEFT, y1: TOP + plotH, x2: WIDTH, y2: TOP + plotH, class: "axis" }));
    root.append(svg("line", { x1: LEFT, y1: TOP, x2: LEFT, y2: TOP + plotH, class: "axis" }));
    const top = svg("text", { x: 2, y: TOP + 8 });
    top.textContent = format(max);
    const zero = svg("text", { x: 2, y: TOP + plotH });
    zero.textContent = format(0);
    const span = svg("text", { x: LEFT, y: HEIGHT - 4 });
    span.textContent = `last ${WINDOW_POINTS} readings`;
    root.append(top, zero, span);
    for (const s of series) {
      if (s.values.length < 2) continue;
      const step = plotW / (WINDOW_POINTS - 1);
      const offset = WINDOW_POINTS - s.values.length;
      const d = s.values.map((v, i) => `${i ? "L" : "M"}${(LEFT + (offset + i) * step).toFixed(1)},${(TOP + plotH - (v / max) * plotH).toFixed(1)}`).join("");
      root.append(svg("path", { d, fill: "none", stroke: s.color, "stroke-width": 1.5, "vector-effect": "non-scaling-stroke" }));
    }
    drawLegend();
  }
  draw();
  return {
    el: wrap,
    /** Adds one reading per series, in the order of `names`. */
    push(values) {
      series.forEach((s, i) => {
        s.values.push(Number(values[i]) || 0);
        if (s.values.length > WINDOW_POINTS) s.values.shift();
      });
      draw();
    },
    /** Replaces the series' names (a new set of partitions), keeping what matches. */
    rename(newNames) {
      const old = new Map(series.map((s) => [s.name, s.values]));
      series = newNames.map((name, i) => ({ name, color: COLORS[i % COLORS.length], values: old.get(name) || [] }));
      draw();
    },
  };
}
