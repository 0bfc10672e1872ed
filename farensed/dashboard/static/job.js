// One job: its progress, live curves, checkpoints, answers, settings and the end of its log.
"use strict";

(function () {
  const jobId = decodeURIComponent(location.pathname.split("/").pop());
  const main = F.$("main");
  const head = F.el("section", { id: "head", class: "card" });
  const chartsBox = F.el("section", { id: "charts", class: "charts" });
  const answersBox = F.el("section", { id: "answers", class: "card" });
  const ckptBox = F.el("section", { id: "checkpoints", class: "card" });
  const settingsBox = F.el("section", { id: "settings", class: "card" });
  const logBox = F.el("section", { id: "log", class: "card" });
  main.append(head, chartsBox, answersBox, ckptBox, logBox, settingsBox);
  document.title = `farensed · ${jobId}`;
  const charts = {
    loss: new F.Chart(chartsBox, "loss (train, validation)", { id: "loss" }),
    score: new F.Chart(chartsBox, "answer score at each eval", { id: "score",
      empty: "no answer scores per eval in this run (the end-of-run scores are in the answers table)" }),
    lr: new F.Chart(chartsBox, "learning rate", { id: "lr" }),
    memory: new F.Chart(chartsBox, "memory (GB)", { id: "memory", unit: "GB" }),
    speed: new F.Chart(chartsBox, "tokens/s", { id: "speed" }),
  };
  let refresh = null;

  function line(label, x, y, more) {
    return Object.assign({ label, x, y }, more || {});
  }

  function renderCharts(p) {
    const t = p.series.train, e = p.series.eval;
    charts.loss.update([line("train loss", t.step, t.train_loss), line("val loss", e.step, e.val_loss, { points: true })]);
    const scoreKeys = Object.keys(e).filter((k) => k !== "step" && k !== "val_loss");
    charts.score.update(scoreKeys.map((k) => line(k, e.step, e[k], { points: true })));
    charts.lr.update([line("learning rate", t.step, t.learning_rate)]);
    const budget = p.job.budget_gb || p.settings["memory.budget_gb"] || null;
    const mem = [line("active", t.step, t.active_memory_gb), line("peak", t.step, t.peak_memory_gb)];
    if (budget) mem.push(line(`budget ${budget} GB`, t.step, t.step.map(() => budget), { dash: [6, 4], points: false }));
    charts.memory.caption.textContent = budget ? `memory (GB) against the ${budget} GB budget` : "memory (GB), no budget set";
    charts.memory.update(mem);
    charts.speed.update([line("tokens/s", t.step, t.tokens_per_sec)]);
  }

  function renderHead(p) {
    const j = p.job;
    const facts = [
      ["phase", j.phase || "-"], ["step", F.stepText(j)], ["ETA", F.secs(j.eta_seconds)],
      ["train loss", F.num(j.train_loss)], ["val loss", F.num(j.val_loss)],
      ["best val loss", p.best.val_loss === null ? "-" : `${F.num(p.best.val_loss)} at step ${p.best.step}`],
      ["learning rate", j.learning_rate === null ? "-" : Number(j.learning_rate).toExponential(2)],
      ["tokens/s", F.num(j.tokens_per_sec, 0)],
      ["memory", `${F.gb(j.active_memory_gb)} active, ${F.gb(j.peak_memory_gb)} peak` + (j.budget_gb ? ` / budget ${j.budget_gb} GB` : "")],
      ["micro-batch x acc", j.micro_batch ? `${j.micro_batch} x ${j.grad_accumulation}${j.grad_checkpoint ? " + grad checkpointing" : ""}` : "-"],
      ["memory plan", j.memory_plan || "-"], ["restarts", j.restarts], ["priority", j.priority],
      ["sweep", j.sweep || "-"], ["run folder", p.run_dir || "-"], ["reason", j.reason || "-"],
    ];
    const title = F.el("h1", {}, F.el("span", { id: "job-name", text: j.name }), " ",
      F.el("span", { class: "muted", text: `(${j.id})` }), " ", F.badge(j.state));
    const progress = F.el("p", { class: "progress-line" }, "step ", F.el("span", { id: "step", text: F.stepText(j) }),
      " ", F.progress(j), " ETA ", F.el("span", { id: "eta", text: F.secs(j.eta_seconds) }));
    const acts = F.el("p", { class: "actions" }, F.actionButtons(j, p.access, () => refresh && refresh()));
    const compareTo = F.el("p", { class: "muted" }, "compare with another job: ",
      F.el("a", { href: `/compare?job=${encodeURIComponent(j.id)}`, text: "pick one" }));
    F.fill(head, title, progress, acts, F.kvTable(facts, { id: "facts" }),
      p.figures.length ? F.el("details", {}, F.el("summary", { text: "all figures" }), F.kvTable(p.figures)) : null,
      compareTo);
  }

  function cell(row, target) {
    const a = row.answers[target];
    if (!a) return F.el("td", { text: "-" });
    return F.el("td", { class: `answer answer-${target}` }, F.el("span", { text: a.answer.trim() || "(empty)" }),
      a.f1 === null ? null : F.el("span", { class: "f1", text: ` F1 ${a.f1.toFixed(2)}` }));
  }

  function answersTable(rows, id) {
    return F.table(["question", "reference", "base", "best", "final"], rows.map((r) => F.el("tr", {},
      F.el("td", { class: "question", text: r.question }), F.el("td", { class: "muted", text: r.reference || "-" }),
      cell(r, "base"), cell(r, "best"), cell(r, "final"))), { id, class: "answers" });
  }

  function scoreLine(s) {
    const part = (means) => ["base", "best", "final"].filter((t) => means[t])
      .map((t) => `${t} F1 ${means[t].f1.toFixed(2)} (exact ${(100 * means[t].exact_match).toFixed(0)}%)`).join(" · ");
    const lines = [F.el("p", { id: "score-means", text: `held-out (${s.examples} of ${s.available}, ${s.data}): ${part(s.means)}` })];
    if (Object.keys(s.prompt_means || {}).length) lines.push(F.el("p", { text: `job prompts: ${part(s.prompt_means)}` }));
    return lines;
  }

  function renderAnswers(p) {
    const held = p.answers.filter((r) => r.kind === "held_out"), prompts = p.answers.filter((r) => r.kind === "prompt");
    const parts = [F.el("h2", { text: "Answers: base model, best and final adapters" })];
    if (p.scores) parts.push(...scoreLine(p.scores));
    if (prompts.length) parts.push(F.el("h3", { text: "the job's prompts" }), answersTable(prompts, "prompt-answers"));
    if (held.length) parts.push(F.el("h3", { text: "held-out questions" }), answersTable(held, "answers-table"));
    if (!p.answers.length && p.prompt_answers.length) {
      parts.push(F.table(["prompt", "answer (best adapters)"], p.prompt_answers.map((a) =>
        F.el("tr", {}, F.el("td", { text: a.prompt }), F.el("td", { text: a.answer })))));
    }
    if (parts.length === 1) parts.push(F.el("p", { class: "muted", text: "no answers yet: they come after training" }));
    F.fill(answersBox, parts);
  }

  function renderCheckpoints(p) {
    const rows = p.checkpoints.map((c) => F.el("tr", { class: c.best ? "best" : "" },
      F.el("td", { class: "num", text: c.step }), F.el("td", { text: c.name }), F.el("td", { text: c.best ? "best" : "" })));
    const downs = p.downshifts.map((d) => F.el("tr", {}, F.el("td", { class: "num", text: d.step }),
      F.el("td", { text: `${d.from_micro_batch} -> ${d.to_micro_batch}${d.grad_checkpoint ? " + grad checkpointing" : ""}` }),
      F.el("td", { text: d.source }), F.el("td", { text: d.reason })));
    const hist = p.history.map((h) => F.el("tr", {}, F.el("td", { text: F.clock(h.at) }),
      F.el("td", { text: `${h.from_state || "-"} -> ${h.to_state}` }), F.el("td", { text: h.reason || "" })));
    F.fill(ckptBox, F.el("h2", { text: "Checkpoints, downshifts, history" }),
      rows.length ? F.table(["step", "checkpoint", ""], rows, { id: "checkpoint-table" })
        : F.el("p", { class: "muted", text: "no checkpoint on disk yet" }),
      p.restart_steps.length ? F.el("p", { text: `resumed at steps ${p.restart_steps.join(", ")}` }) : null,
      downs.length ? F.table(["step", "micro-batch", "source", "reason"], downs, { id: "downshifts" })
        : F.el("p", { class: "muted", text: "no out-of-memory downshift" }),
      F.el("details", {}, F.el("summary", { text: `state history (${hist.length})` }),
        F.table(["at", "move", "reason"], hist)));
  }

  function renderLog(p) {
    const view = F.el("div", { id: "log-lines", class: "log" }, p.log.map((l) => F.el("div", { class: `log-line lvl-${l.level.replace(/[^a-z]/g, "")}` },
      F.el("span", { class: "t", text: l.time }), " ", F.el("span", { class: "lvl", text: l.level }), " ",
      F.el("span", { class: "ev", text: l.event }), " ", F.el("span", { text: l.text }))));
    F.fill(logBox, F.el("h2", { text: `Log (last ${p.log.length} lines of worker.log)` }), view);
    view.scrollTop = view.scrollHeight;
  }

  function renderSettings(p) {
    const pairs = Object.entries(p.settings).sort(([a], [b]) => a.localeCompare(b))
      .map(([k, v]) => [k, typeof v === "object" && v !== null ? JSON.stringify(v) : String(v)]);
    const open = settingsBox.querySelector("details") ? settingsBox.querySelector("details").open : false;
    const box = F.el("details", {}, F.el("summary", { text: `Settings (${pairs.length}, defaults included)` }),
      F.kvTable(pairs, { id: "settings-table" }));
    box.open = open;  // a re-render keeps it as the reader left it
    F.fill(settingsBox, box);
  }

  function render(p) {
    F.accessBox(p.access);
    renderHead(p);
    renderCharts(p);
    renderAnswers(p);
    renderCheckpoints(p);
    renderLog(p);
    renderSettings(p);
  }

  refresh = F.poll(`/api/job/${encodeURIComponent(jobId)}`, render);
  F.poll("/api/daemon", (d) => F.fill(F.$("daemon"), F.daemonLine(d, d.now)), 10000);
})();
