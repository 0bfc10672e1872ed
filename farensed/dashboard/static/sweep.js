// A sweep: every trial's curves laid over each other, and the trials ranked by the sweep's metric.
"use strict";

(function () {
  const sweepId = decodeURIComponent(location.pathname.split("/").pop());
  const main = F.$("main");
  const head = F.el("section", { id: "head", class: "card" });
  const chartsBox = F.el("section", { id: "charts", class: "charts" });
  const tableBox = F.el("section", { id: "ranking", class: "card" });
  main.append(head, tableBox, chartsBox);
  document.title = `farensed · sweep ${sweepId}`;
  const charts = {
    val: new F.Chart(chartsBox, "validation loss, every trial", { id: "sweep-val" }),
    train: new F.Chart(chartsBox, "train loss, every trial", { id: "sweep-train" }),
    metric: new F.Chart(chartsBox, "the sweep's metric at each eval", { id: "sweep-metric",
      empty: "the trials' evals carry no per-eval value of this metric" }),
  };

  function fmt(v) {
    return v === null || v === undefined ? "-" : typeof v === "number" ? String(Number(v.toPrecision(4))) : String(v);
  }

  function render(s) {
    F.fill(head, F.el("h1", {}, "sweep ", F.el("span", { text: s.id })),
      F.kvTable([["metric", `${s.metric} (${s.direction})`], ["winner", s.winner || "none yet"],
        ["trials", s.trials.length], ["pruned", s.trials.filter((t) => t.pruned).length],
        ...Object.entries(s.record).map(([k, v]) => [k, String(v)])], { id: "sweep-facts" }));
    const rows = s.trials.map((t, i) => F.el("tr", { class: (t.id === s.winner ? "winner " : "") + (t.pruned ? "pruned" : ""),
      data: { job: t.id } },
      F.el("td", { class: "num", text: i + 1 }),
      F.el("td", {}, F.el("a", { href: `/job/${encodeURIComponent(t.id)}`, text: t.id }),
        t.id === s.winner ? F.el("span", { class: "badge winner-badge", text: "winner" }) : null),
      F.el("td", {}, F.badge(t.state), t.pruned ? F.el("span", { class: "badge pruned-badge", text: "pruned" }) : null),
      F.el("td", { class: "num value", text: fmt(t.value) }),
      F.el("td", { text: t.total_steps ? `${t.step}/${t.total_steps}` : String(t.step) }),
      ...s.setting_keys.map((k) => F.el("td", { text: fmt(t.settings[k]) }))));
    F.fill(tableBox, F.el("h2", { text: `Trials ranked by ${s.metric}` }),
      F.table(["#", "trial", "state", s.metric, "step", ...s.setting_keys], rows, { id: "trials" }),
      F.el("p", { class: "muted", text: "settings shown are those that differ between trials" }));
    const pick = (kind, key) => s.trials.map((t) => ({ label: t.id, x: t.series[kind].step, y: t.series[kind][key] || [],
      width: t.id === s.winner ? 3 : 1.5, dash: t.pruned ? [4, 4] : undefined }));
    charts.val.update(pick("eval", "val_loss"));
    charts.train.update(pick("train", "train_loss"));
    charts.metric.update(s.metric === "val_loss" ? [] : pick("eval", s.metric));
  }

  F.poll(`/api/sweep/${encodeURIComponent(sweepId)}`, render);
  F.poll("/api/daemon", (d) => { F.fill(F.$("daemon"), F.daemonLine(d, d.now)); F.accessBox(d.access); }, 10000);
})();
