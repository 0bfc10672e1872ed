// Compare jobs side by side: figures, answer scores, the settings that differ, curves overlaid.
"use strict";

(function () {
  const params = new URLSearchParams(location.search);
  const ids = params.getAll("job").filter(Boolean);
  const main = F.$("main");
  const pickBox = F.el("section", { id: "pick", class: "card" });
  const tableBox = F.el("section", { id: "compare-table", class: "card" });
  const chartsBox = F.el("section", { id: "charts", class: "charts" });
  main.append(pickBox, tableBox, chartsBox);

  async function picker() {
    let jobs = [];
    try { jobs = (await F.get("/api/queue")).body.jobs; } catch (e) { F.status(e.message); }
    const select = (chosen, n) => F.el("select", { id: `pick-${n}`, "aria-label": `job ${n}` },
      F.el("option", { value: "", text: "(choose a job)" }),
      jobs.map((j) => { const o = F.el("option", { value: j.id, text: `${j.id} · ${j.state}` }); o.selected = j.id === chosen; return o; }));
    const a = select(ids[0], 1), b = select(ids[1], 2);
    const go = F.el("button", { type: "button", id: "pick-go", text: "compare", on: { click: () => {
      const q = [a.value, b.value].filter(Boolean).map((i) => `job=${encodeURIComponent(i)}`).join("&");
      location.assign(`/compare?${q}`);
    } } });
    F.fill(pickBox, F.el("h2", { text: "Compare two jobs" }), F.el("p", {}, a, " with ", b, " ", go));
  }

  function section(title, rows, names) {
    if (!rows.length) return [];
    return [F.el("tr", { class: "section" }, F.el("th", { colspan: names.length + 1, text: title })),
      ...rows.map(([label, values]) => F.el("tr", { class: values.some((v) => v !== values[0]) ? "differs" : "" },
        F.el("th", { text: label }), values.map((v) => F.el("td", { text: v }))))];
  }

  function render(c) {
    const names = c.jobs.map((j) => (j.name && j.name !== j.id ? `${j.id} (${j.name})` : j.id));
    const head = F.el("tr", {}, F.el("th", { text: "" }), c.jobs.map((j, i) =>
      F.el("th", {}, F.el("a", { href: `/job/${encodeURIComponent(j.id)}`, text: names[i] }), " ", F.badge(j.state))));
    const body = [...section("figures", c.figures, names), ...section("answer scores (held-out)", c.scores, names),
      ...section("settings that differ", c.differ, names)];
    F.fill(tableBox, F.el("h2", { text: "Side by side" }),
      c.missing.length ? F.el("p", { class: "muted", text: `no run folder yet for ${c.missing.join(", ")}` }) : null,
      F.el("table", { id: "compare", class: "compare" }, F.el("thead", {}, head), F.el("tbody", {}, body)));
    const lines = (kind, key, dash) => c.jobs.map((j, i) => ({ label: `${j.id} ${key.replace(/_/g, " ")}`,
      x: c.series[i][kind].step, y: c.series[i][kind][key] || [], color: F.COLORS[i], dash, points: kind === "eval" }));
    charts.loss.update([...lines("train", "train_loss"), ...lines("eval", "val_loss", [6, 3])]);
    charts.speed.update(lines("train", "tokens_per_sec"));
    charts.memory.update(lines("train", "peak_memory_gb"));
  }

  const charts = {};
  picker();
  if (ids.length >= 2) {
    charts.loss = new F.Chart(chartsBox, "loss (solid train, dashed validation)", { id: "compare-loss" });
    charts.speed = new F.Chart(chartsBox, "tokens/s", { id: "compare-speed" });
    charts.memory = new F.Chart(chartsBox, "peak memory (GB)", { id: "compare-memory" });
    F.poll(`/api/compare?${ids.map((i) => `job=${encodeURIComponent(i)}`).join("&")}`, render);
  }
  F.poll("/api/daemon", (d) => { F.fill(F.$("daemon"), F.daemonLine(d, d.now)); F.accessBox(d.access); }, 10000);
})();
