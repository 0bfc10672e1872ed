// The queue page: the daemon, every job, the sweeps, compare two, submit a job file.
"use strict";

(function () {
  const main = F.$("main");
  const selected = new Set();
  const daemonBox = F.el("section", { id: "daemon-card", class: "card" });
  const jobsBox = F.el("section", { class: "card" });
  const sweepsBox = F.el("section", { id: "sweeps", class: "card", hidden: true });
  const submitBox = F.el("section", { id: "submit", class: "card", hidden: true });
  main.append(daemonBox, sweepsBox, jobsBox, submitBox);
  let refresh = null;

  function jobRow(j, access) {
    const box = F.el("input", { type: "checkbox", class: "pick", "aria-label": `select ${j.id}` });
    box.checked = selected.has(j.id);
    box.addEventListener("change", () => {
      if (box.checked) selected.add(j.id); else selected.delete(j.id);
      compareLink();
    });
    const link = F.el("a", { href: `/job/${encodeURIComponent(j.id)}`, class: "job-link", text: j.id });
    const note = j.reason || j.outcome || (j.sweep ? `sweep ${j.sweep}` : "");
    return F.el("tr", { data: { job: j.id, state: j.state } },
      F.el("td", {}, box),
      F.el("td", {}, link),
      F.el("td", { class: "name", text: j.name }),
      F.el("td", {}, F.badge(j.state)),
      F.el("td", { text: j.phase || "-" }),
      F.el("td", { class: "step" }, F.el("span", { class: "step-text", text: F.stepText(j) }), " ", F.progress(j)),
      F.el("td", { text: F.secs(j.eta_seconds) }),
      F.el("td", { class: "num", text: j.priority }),
      F.el("td", { class: "num", text: F.num(j.train_loss, 3) }),
      F.el("td", { class: "num", text: F.num(j.val_loss, 3) }),
      F.el("td", { class: "num", text: j.restarts }),
      F.el("td", { class: "reason", text: note }),
      F.el("td", { class: "actions" }, F.actionButtons(j, access, () => refresh && refresh())));
  }

  function compareLink() {
    const box = F.$("compare-pick");
    if (!box) return;
    const ids = [...selected];
    const params = ids.map((i) => `job=${encodeURIComponent(i)}`).join("&");
    F.fill(box, ids.length >= 2
      ? F.el("a", { href: `/compare?${params}`, id: "compare-link", text: `compare ${ids.join(" and ")}` })
      : `tick two jobs to compare them (${ids.length} ticked)`);
  }

  function renderDaemon(q) {
    const d = q.daemon;
    const counts = Object.entries(q.counts).map(([s, n]) => `${n} ${s}`).join(", ") || "no jobs";
    const live = ["idle", "running", "stopping"].includes(d.state);
    const last = live ? "" : "last ";  // status.json as a daemon left it: not a live one's
    F.fill(daemonBox, F.el("h2", { text: "Daemon" }), F.kvTable([
      ["state", d.state], [`${last}pid`, d.pid === null ? "-" : d.pid], [`${last}started`, F.clock(d.started_at)],
      [`${last}heartbeat`, d.heartbeat ? `${F.clock(d.heartbeat)} (${F.secs(Math.max(0, q.updated_at - d.heartbeat))} ago)` : "-"],
      ["power", F.guardLine(d)], ["jobs", counts],
    ], { id: "daemon-table" }), F.el("p", { class: "muted", text: d.note }));
  }

  function renderJobs(q) {
    const head = ["", "id", "name", "state", "phase", "step", "ETA", "prio", "loss", "val", "restarts", "note", ""];
    F.fill(jobsBox, F.el("h2", { text: `Jobs (${q.jobs.length})` }),
      F.el("p", { id: "compare-pick", class: "muted" }),
      q.jobs.length ? F.table(head, q.jobs.map((j) => jobRow(j, q.access)), { id: "jobs", class: "jobs" })
        : F.el("p", { class: "muted", text: "no jobs: drop a job file into the spool, or submit one below" }));
    compareLink();
  }

  function renderSweeps(q) {
    sweepsBox.hidden = !q.sweeps.length;
    F.fill(sweepsBox, F.el("h2", { text: "Sweeps" }), F.el("ul", {}, q.sweeps.map((s) =>
      F.el("li", {}, F.el("a", { href: `/sweep/${encodeURIComponent(s)}`, text: s })))));
  }

  function buildSubmit() {
    if (submitBox.dataset.built) return;
    submitBox.dataset.built = "1";
    const name = F.el("input", { id: "submit-name", value: "job.toml", size: 30, "aria-label": "file name" });
    const text = F.el("textarea", { id: "submit-text", rows: 10, cols: 80, spellcheck: "false",
      placeholder: "name = \"...\"\nmodel = \"...\"\ndata = \"...\"" });
    const out = F.el("div", { id: "submit-result" });
    const send = (dry) => async () => {
      F.fill(out, dry ? "checking..." : "submitting...");
      try {
        const res = await F.post("/api/submit", { file_name: name.value, text: text.value, dry_run: dry });
        const head = res.ok ? (res.submitted ? `submitted as ${res.job_id}` : `valid: would be ${res.job_id}`)
          : `${res.problems.length} problem(s): not submitted`;
        F.fill(out, F.el("p", { class: res.ok ? "ok" : "bad", text: head }),
          F.el("ul", { class: "problems" }, res.problems.map((p) => F.el("li", { text: p.text }))),
          F.el("ul", { class: "notes" }, res.notes.map((n) => F.el("li", { class: "muted", text: n }))));
        if (res.submitted && refresh) refresh();
      } catch (e) {
        F.fill(out, F.el("p", { class: "bad", text: e.message }));
      }
    };
    const file = F.el("input", { type: "file", accept: ".toml", "aria-label": "job file" });
    file.addEventListener("change", async () => {
      if (!file.files.length) return;
      name.value = file.files[0].name;
      text.value = await file.files[0].text();
    });
    F.fill(submitBox, F.el("h2", { text: "Submit a job file" }),
      F.el("p", {}, file, " or paste it below; it is checked exactly as farensectl validate does."),
      F.el("p", {}, "file name ", name), text,
      F.el("p", {}, F.el("button", { type: "button", id: "submit-check", text: "validate", on: { click: send(true) } }),
        " ", F.el("button", { type: "button", id: "submit-send", text: "submit", on: { click: send(false) } })),
      out);
  }

  function render(q) {
    F.fill(F.$("daemon"), F.daemonLine(q.daemon, q.updated_at));
    F.accessBox(q.access);
    renderDaemon(q);
    renderJobs(q);
    renderSweeps(q);
    const canAct = q.access.actions && q.access.token_ok;
    submitBox.hidden = !canAct;
    if (canAct) buildSubmit();
  }

  refresh = F.poll("/api/queue", render);
})();
