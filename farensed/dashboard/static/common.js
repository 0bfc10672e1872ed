// farensed dashboard: shared helpers. Everything from the server (job names, answers, log lines)
// goes into the page as text (textContent, createTextNode), never as markup.
"use strict";

const F = {};
const TOKEN_KEY = "farensed.token:" + location.host;
const POLL_MS = 2000;

F.el = function (tag, props, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "text") node.textContent = String(v);
    else if (k === "class") node.className = v;
    else if (k === "on") for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
    else if (k === "data") for (const [dk, dv] of Object.entries(v)) node.dataset[dk] = String(dv);
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.appendChild(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
};

F.fill = function (node, ...children) {
  node.replaceChildren(...children.flat().filter((c) => c !== null && c !== undefined && c !== false)
    .map((c) => (c instanceof Node ? c : document.createTextNode(String(c)))));
  return node;
};

F.$ = (id) => document.getElementById(id);

// --- numbers and times -------------------------------------------------------------------
F.num = (x, digits = 4) => (x === null || x === undefined ? "-" : Number(x).toFixed(digits));
F.secs = function (s) {
  if (s === null || s === undefined) return "-";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), r = s % 60;
  if (h) return `${h}h${String(m).padStart(2, "0")}m`;
  return `${m}m${String(r).padStart(2, "0")}s`;
};
F.clock = (t) => (t ? new Date(t * 1000).toLocaleTimeString() : "-");
F.gb = (x) => (x === null || x === undefined ? "-" : x < 0.1 ? `${(x * 1024).toFixed(1)} MB` : `${x.toFixed(2)} GB`);
F.stepText = (j) => (j.total_steps ? `${j.step}/${j.total_steps}` : String(j.step || "-"));

F.badge = (state) => F.el("span", { class: `badge state-${String(state).replace(/[^a-z_]/g, "")}`, text: state });

F.progress = function (j) {
  if (!j.total_steps) return null;  // not started: no bar to fill
  const pct = Math.min(100, (100 * j.step) / j.total_steps);
  const bar = F.el("span", { class: "bar-fill" });
  bar.style.width = pct.toFixed(1) + "%";
  return F.el("span", { class: "bar", title: `${pct.toFixed(1)}%` }, bar);
};

// --- the token -----------------------------------------------------------------------------
F.token = function () {
  const m = location.hash.match(/^#token=([A-Za-z0-9_-]+)$/);
  if (m) {
    localStorage.setItem(TOKEN_KEY, m[1]);
    history.replaceState(null, "", location.pathname + location.search);  // not left in the address bar
  }
  return localStorage.getItem(TOKEN_KEY);
};

F.headers = function (extra) {
  const h = Object.assign({}, extra || {});
  const t = F.token();
  if (t) h["X-Farensed-Token"] = t;
  return h;
};

// --- the API -------------------------------------------------------------------------------
const etags = {};
const lastBodies = {};

F.get = async function (path) {
  const h = F.headers();
  if (etags[path]) h["If-None-Match"] = etags[path];
  const r = await fetch(path, { headers: h, cache: "no-store" });
  if (r.status === 304) return { changed: false, body: lastBodies[path] };
  const body = await r.json();
  if (!r.ok) throw Object.assign(new Error(body.error || `HTTP ${r.status}`), { status: r.status });
  etags[path] = r.headers.get("ETag");
  lastBodies[path] = body;
  return { changed: true, body };
};

F.post = async function (path, payload) {
  const r = await fetch(path, {
    method: "POST", headers: F.headers({ "Content-Type": "application/json" }),
    body: JSON.stringify(payload || {}),
  });
  let body;
  try { body = await r.json(); } catch (e) { body = { error: `HTTP ${r.status}` }; }
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
};

// Call render(body) now and every `ms` while the tab is visible; only changed answers render.
F.poll = function (path, render, ms) {
  let timer = null, busy = false;
  const tick = async () => {
    if (busy) return;  // the running one schedules the next
    busy = true;
    clearTimeout(timer);
    try {
      const { changed, body } = await F.get(typeof path === "function" ? path() : path);
      if (changed) render(body);
      if (!performance.getEntriesByName("farensed:rendered").length) performance.mark("farensed:rendered");
      F.status("");
    } catch (e) {
      F.status(e.status ? e.message : `cannot reach the dashboard: ${e.message}`);
    } finally {
      busy = false;
    }
    if (!document.hidden) timer = setTimeout(tick, ms || POLL_MS);
  };
  document.addEventListener("visibilitychange", () => { if (!document.hidden) tick(); });
  tick();
  return tick;
};

F.status = function (text) {
  const s = F.$("conn");
  if (s) { s.textContent = text; s.hidden = !text; }
};

// --- header: the daemon line and the token box ----------------------------------------------
F.daemonLine = function (d, now) {
  const age = d.heartbeat ? Math.max(0, (now || Date.now() / 1000) - d.heartbeat) : null;
  const parts = [F.badge(d.state), " ", d.note || ""];
  const live = ["idle", "running", "stopping"].includes(d.state);
  if (age !== null) parts.push(` · ${live ? "heartbeat" : "last heartbeat"} ${F.secs(age)} ago`);
  return parts;
};

F.guardLine = function (d) {
  const guard = d.sleep_guard ? `sleep guard: ${d.sleep_guard}` : "sleep guard: none";
  const battery = d.on_battery === null || d.on_battery === undefined ? "power: unknown"
    : d.on_battery ? "on battery" : "on mains power";
  const blas = d.blas ? ` · BLAS: ${d.blas}` : "";
  return `${guard} · ${battery}${blas}`;
};

F.accessBox = function (access) {
  const box = F.$("access");
  const key = `${access.actions}/${access.token_ok}/${Boolean(F.token())}`;
  if (!box || box.dataset.key === key) return;  // unchanged: keep what is being typed
  box.dataset.key = key;
  const input = F.el("input", { type: "password", id: "token-input", placeholder: "dashboard token", size: 24,
    autocomplete: "off" });
  const save = F.el("button", { type: "submit", id: "token-save", text: "use token" });
  const form = F.el("form", { class: "token-form", on: { submit: (ev) => {
    ev.preventDefault();
    const v = input.value.trim();
    if (v) localStorage.setItem(TOKEN_KEY, v); else localStorage.removeItem(TOKEN_KEY);
    location.reload();
  } } }, input, " ", save);
  let text;
  if (!access.actions) text = "read-only dashboard";
  else if (access.token_ok) text = "actions on (token accepted)";
  else if (F.token()) text = "token refused: read-only";
  else text = "read-only: give the token to act";
  const parts = [F.el("span", { id: "access-state", text })];
  if (access.actions && !access.token_ok) parts.push(" ", form);
  F.fill(box, parts);
};

// --- actions -------------------------------------------------------------------------------
F.actionButtons = function (job, access, after) {
  if (!access || !access.actions || !access.token_ok) return [];
  return (job.verbs || []).map((verb) => F.el("button", {
    type: "button", class: `act act-${verb}`, "data-verb": verb, "data-job": job.id, text: verb,
    on: { click: async (ev) => {
      ev.target.disabled = true;
      try {
        const res = await F.post(`/api/job/${encodeURIComponent(job.id)}/${verb}`);
        F.note(res.message);
      } catch (e) {
        F.note(`${verb} refused: ${e.message}`, true);
      }
      if (after) after();
    } },
  }));
};

F.note = function (text, bad) {
  const n = F.$("note");
  if (!n) return;
  n.textContent = text;
  n.className = bad ? "note bad" : "note";
  n.hidden = false;
};

F.table = function (head, rows, props) {
  return F.el("table", props || {},
    F.el("thead", {}, F.el("tr", {}, head.map((h) => F.el("th", { text: h })))),
    F.el("tbody", {}, rows));
};

F.kvTable = function (pairs, props) {
  return F.el("table", Object.assign({ class: "kv" }, props || {}),
    F.el("tbody", {}, pairs.map(([k, v]) => F.el("tr", {}, F.el("th", { text: k }), F.el("td", { text: v })))));
};

window.F = F;
