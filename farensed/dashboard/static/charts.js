// Line charts over steps, drawn by uPlot (vendor/uPlot.iife.min.js, MIT, shipped in the package).
"use strict";

F.COLORS = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f",
  "#64748b", "#ca8a04"];

// [{x: [...], y: [...]}, ...] -> uPlot's [xs, ys1, ys2, ...] on the union of the steps (null = no point)
F.align = function (lines) {
  const xs = [...new Set(lines.flatMap((l) => l.x).filter((v) => v !== null && v !== undefined))]
    .sort((a, b) => a - b);
  const at = new Map(xs.map((x, i) => [x, i]));
  return [xs, ...lines.map((l) => {
    const ys = new Array(xs.length).fill(null);
    l.x.forEach((x, i) => { if (at.has(x) && l.y[i] !== undefined) ys[at.get(x)] = l.y[i]; });
    return ys;
  })];
};

F.Chart = class {
  constructor(parent, title, opts) {
    this.opts = opts || {};
    this.plotBox = F.el("div", { class: "plot" });
    this.empty = F.el("div", { class: "empty", text: this.opts.empty || "no points yet" });
    this.caption = F.el("figcaption", { text: title });
    this.box = F.el("figure", { class: "chart", data: { points: 0, chart: this.opts.id || title } },
      this.caption, this.plotBox, this.empty);
    parent.appendChild(this.box);
    this.plot = null;
    this.key = "";
    window.addEventListener("resize", () => this.plot && this.plot.setSize(this.size()));
  }

  size() {
    return { width: Math.max(240, this.box.clientWidth - 16), height: this.opts.height || 200 };
  }

  // lines: [{label, x: [...], y: [...], points: bool, dash: [..]}]
  update(lines) {
    lines = lines.filter((l) => l.y.some((v) => v !== null && v !== undefined));
    const data = F.align(lines);
    const points = data.slice(1).reduce((n, ys) => n + ys.filter((v) => v !== null).length, 0);
    this.box.dataset.points = points;
    this.empty.hidden = points > 0;
    this.plotBox.hidden = points === 0;
    if (points === 0) return;
    const key = lines.map((l) => l.label).join("\u0000");
    if (this.plot && key === this.key) {
      this.plot.setData(data);
      return;
    }
    if (this.plot) this.plot.destroy();
    this.key = key;
    this.plot = new uPlot(this.options(lines), data, this.plotBox);
  }

  options(lines) {
    return Object.assign(this.size(), {
      scales: { x: { time: false } },
      cursor: { drag: { x: true, y: false } },
      series: [{ label: "step" }, ...lines.map((l, i) => ({
        label: l.label, stroke: l.color || F.COLORS[i % F.COLORS.length], width: l.width || 1.5,
        spanGaps: true, dash: l.dash, points: { show: l.points === undefined ? l.x.length < 40 : l.points, size: 5 },
      }))],
      axes: [{ label: "step" }, { size: 56, label: this.opts.unit || "" }],
    });
  }
};
