// Two small hand-written SVG charts: a rate over time and a bar chart of batch sizes.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * @param {string} name
 * @param {Record<string, string | number>} [attrs]
 * @param {(Node | string)[]} [children]
 */
function svg(name, attrs = {}, children = []) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  for (const child of children) node.append(child);
  return node;
}

/** A round upper bound for an axis: 1, 2, 5, 10, 20, 50, ... */
export function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

/** @param {number} n */
function compact(n) {
  if (n >= 1000) return `${(n / 1000).toFixed(n >= 10_000 ? 0 : 1)}k`;
  if (n >= 10 || Number.isInteger(n)) return String(Math.round(n));
  return n.toFixed(1);
}

/**
 * Draw a series of values (oldest first) as an area chart; the newest value sits at the right edge.
 * @param {SVGSVGElement} root
 * @param {number[]} values
 * @param {{capacity: number, unit: string, intervalSeconds: number}} options
 */
export function renderRateChart(root, values, { capacity, unit, intervalSeconds }) {
  const W = 320;
  const H = 104;
  const left = 30;
  const right = 6;
  const top = 8;
  const bottom = 18;
  const plotW = W - left - right;
  const plotH = H - top - bottom;
  const max = niceMax(Math.max(0, ...values));
  const x = (i) => left + (plotW * (capacity - values.length + i)) / (capacity - 1);
  const y = (v) => top + plotH - (plotH * Math.min(v, max)) / max;

  root.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const children = [];
  for (const fraction of [0, 0.5, 1]) {
    const gy = top + plotH - plotH * fraction;
    children.push(svg("line", { x1: left, x2: W - right, y1: gy, y2: gy, class: "grid" }));
    children.push(svg("text", { x: left - 5, y: gy + 3.5, class: "axis", "text-anchor": "end" }, [compact(max * fraction)]));
  }
  const span = Math.round(((capacity - 1) * intervalSeconds) / 60);
  children.push(svg("text", { x: left, y: H - 4, class: "axis" }, [`${span} min ago`]));
  children.push(svg("text", { x: W - right, y: H - 4, class: "axis", "text-anchor": "end" }, ["now"]));

  if (values.length >= 2) {
    const points = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
    const base = top + plotH;
    const area = `M${x(0).toFixed(1)},${base} L${points.join(" L")} L${x(values.length - 1).toFixed(1)},${base} Z`;
    children.push(svg("path", { d: area, class: "area" }));
    children.push(svg("polyline", { points: points.join(" "), class: "line" }));
  }
  if (values.length >= 1) {
    const last = values.length - 1;
    children.push(svg("circle", { cx: x(last), cy: y(values[last]), r: 3, class: "dot" }));
  }
  root.replaceChildren(...children);
  root.dataset.points = String(values.length);
  root.dataset.max = String(Math.max(0, ...values));
  root.setAttribute(
    "aria-label",
    values.length
      ? `${unit} over the last ${span} minutes; now ${compact(values.at(-1))}, peak ${compact(Math.max(...values))}`
      : `${unit}: no readings yet`,
  );
}

/**
 * Draw one bar per bucket with its count above it and its label below.
 * @param {SVGSVGElement} root
 * @param {{label: string, count: number}[]} bars
 * @param {{noun: string}} options
 */
export function renderBarChart(root, bars, { noun }) {
  const W = 320;
  const H = 120;
  const top = 14;
  const bottom = 18;
  const side = 4;
  const plotH = H - top - bottom;
  const n = Math.max(bars.length, 1);
  const slot = (W - 2 * side) / n;
  const barW = Math.max(4, slot * 0.72);
  const max = Math.max(1, ...bars.map((b) => b.count));

  root.setAttribute("viewBox", `0 0 ${W} ${H}`);
  const children = [svg("line", { x1: side, x2: W - side, y1: top + plotH + 0.5, y2: top + plotH + 0.5, class: "baseline" })];
  bars.forEach((bar, i) => {
    const cx = side + slot * i + slot / 2;
    const h = bar.count > 0 ? Math.max(2, (plotH * bar.count) / max) : 0;
    const rect = svg(
      "rect",
      {
        x: (cx - barW / 2).toFixed(1),
        y: (top + plotH - h).toFixed(1),
        width: barW.toFixed(1),
        height: h.toFixed(1),
        rx: 2,
        class: bar.count > 0 ? "col" : "col empty",
        "data-testid": "batch-bar",
        "data-label": bar.label,
        "data-count": bar.count,
      },
      [svg("title", {}, [`batch size ${bar.label}: ${bar.count} ${noun}`])],
    );
    children.push(rect);
    if (bar.count > 0) {
      children.push(svg("text", { x: cx, y: top + plotH - h - 3, class: "value", "text-anchor": "middle" }, [compact(bar.count)]));
    }
    children.push(svg("text", { x: cx, y: H - 4, class: "axis", "text-anchor": "middle" }, [bar.label]));
  });
  root.replaceChildren(...children);
  const described = bars.filter((b) => b.count > 0).map((b) => `size ${b.label}: ${b.count}`);
  root.setAttribute("aria-label", `Batch sizes. ${described.length ? described.join(", ") : `No ${noun} yet`}`);
}
