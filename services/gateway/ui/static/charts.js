// Line charts as inline SVG, drawn here (no library; the CSP allows no inline style, so every
// look is a class of group.css). A chart is a time axis and one or two series of [t, value]
// points; a step series (ready and desired counts) holds its value until the next point.

const NS = "http://www.w3.org/2000/svg";
const W = 420;
const H = 140;
const PAD = { left: 36, right: 8, top: 10, bottom: 20 };

function svg(tag, attrs = {}, text = null) {
  const node = document.createElementNS(NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

function clock(seconds) {
  const d = new Date(seconds * 1000);
  return `${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`;
}

/** Draw into `holder` (emptied first). `series`: [{name, cls, points: [[t, v]...], step}];
 * `from`/`to`: the time axis (unix seconds); `max`: the value axis' top (else the data's);
 * `format(v)`: a value's label. Points with a null value break the line. */
export function lineChart(holder, { series, from, to, max = null, format = String, empty = "no data" }) {
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", role: "img" });
  const values = series.flatMap((s) => s.points.map((p) => p[1]).filter((v) => v !== null));
  const top = max !== null ? max : Math.max(1, ...values) * 1.1;
  const x = (t) => PAD.left + ((t - from) / Math.max(1, to - from)) * (W - PAD.left - PAD.right);
  const y = (v) => H - PAD.bottom - (v / top) * (H - PAD.top - PAD.bottom);
  for (const frac of [0, 0.5, 1]) {
    const v = top * frac;
    root.appendChild(svg("line", { x1: PAD.left, x2: W - PAD.right, y1: y(v), y2: y(v), class: "grid" }));
    root.appendChild(svg("text", { x: PAD.left - 4, y: y(v) + 4, class: "tick end" }, format(v)));
  }
  root.appendChild(svg("text", { x: PAD.left, y: H - 4, class: "tick" }, clock(from)));
  root.appendChild(svg("text", { x: W - PAD.right, y: H - 4, class: "tick end" }, clock(to)));
  let drawn = 0;
  for (const s of series) {
    const pts = s.points.filter((p) => p[0] <= to).map((p) => [Math.max(p[0], from), p[1]]);
    if (s.step && pts.length && pts[pts.length - 1][1] !== null) pts.push([to, pts[pts.length - 1][1]]);
    let d = "";
    let prev = null;
    for (const [t, v] of pts) {
      if (v === null) {
        prev = null;
        continue;
      }
      if (prev === null) d += `M${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      else if (s.step) d += `H${x(t).toFixed(1)}V${y(v).toFixed(1)}`;
      else d += `L${x(t).toFixed(1)},${y(v).toFixed(1)}`;
      prev = v;
      drawn++;
    }
    if (d) root.appendChild(svg("path", { d, class: `line ${s.cls}`, "data-series": s.name }));
  }
  if (drawn === 0) root.appendChild(svg("text", { x: W / 2, y: H / 2, class: "tick middle" }, empty));
  const legend = document.createElement("div");
  legend.className = "chart-legend";
  for (const s of series) {
    const item = document.createElement("span");
    item.className = `key ${s.cls}`;
    item.textContent = s.name;
    legend.appendChild(item);
  }
  holder.replaceChildren(root, legend);
  holder.dataset.points = String(drawn);
}
