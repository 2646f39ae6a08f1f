// The operator console: lays out the agent's view model (agent/console/view.py decides what it says) and
// keeps it live over server-sent events. Read-only. Every piece of text goes in with textContent: recipe
// names, PLC errors and alarm messages come from outside and are never parsed as HTML.
"use strict";

const STALE_AFTER_MS = 5000;   // no view for this long: the page says it is not live
const RECONNECT_MS = 2000;     // after the agent restarts (EventSource gives up on a non-200 answer)
const TREND_WINDOW_S = 600;    // the trend ring buffer's window, as the agent keeps it

const $ = (id) => document.getElementById(id);
let lastViewAt = 0;
const loadedAt = Date.now();
let source = null;
let trend = { signature: "", rows: [], plots: [] };

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined) continue;
    if (k === "class") node.className = v; else node.setAttribute(k, String(v));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function setText(id, text) { $(id).textContent = text === null || text === undefined ? "—" : String(text); }

function clock(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return isNaN(d) ? iso : d.toLocaleTimeString([], { hour12: false });
}

function replaceRows(tbody, rows) { tbody.replaceChildren(...rows); }

function renderHeader(v) {
  document.title = `${v.machine.name} · ${v.state}`;
  setText("machine-name", v.machine.name);
  $("machine-name").title = v.machine.id || "";
  const state = $("state");
  state.dataset.state = v.state;
  state.textContent = v.state;
  const plc = $("plc-state");
  plc.dataset.up = String(v.plc.up);
  plc.textContent = v.plc.up ? `PLC up${v.plc.read_ms !== null ? ` · ${v.plc.read_ms} ms` : ""}` : "PLC DOWN";
  plc.title = v.plc.error || "";
  const cloud = $("cloud-state");
  cloud.dataset.up = String(v.cloud.up && !v.cloud.key_refused);
  cloud.textContent = v.cloud.key_refused ? "cloud KEY REFUSED" : v.cloud.up ? "cloud up" : "cloud AWAY";
  setText("role", `role ${v.role}`);
  $("role").dataset.up = String(v.role === "active");
  setText("owner", `owner: ${v.owner}`);
  const spool = $("spool");
  spool.textContent = `spool ${v.spool.depth.toLocaleString()}`;
  const growing = v.problems.some((p) => p.code === "spool_growing" || p.code === "spool_dropping");
  if (growing) spool.dataset.level = "warn"; else delete spool.dataset.level;
  setText("updated", `updated ${clock(v.at)}`);
}

function renderProblems(v) {
  replaceRows($("problems"), v.problems.map((p) => el("li", { "data-level": p.level, "data-code": p.code }, p.text)));
}

function renderRun(v) {
  const run = v.run;
  $("no-run").hidden = run !== null;
  $("run").hidden = run === null;
  const last = v.runs.length ? v.runs[0] : null;
  $("last-run").hidden = last === null;
  if (last) {
    $("last-run").dataset.status = last.status;
    setText("last-run-recipe", last.recipe);
    setText("last-run-outcome", `${last.status} after ${last.completed}/${last.total} steps, ${last.duration}` +
      (last.error ? ` — ${last.error}` : ""));
  }
  if (!run) return;
  setText("recipe-name", run.recipe);
  const status = $("run-status");
  status.textContent = run.status;
  status.dataset.status = run.status;
  const bar = $("progress");
  bar.setAttribute("aria-valuenow", String(run.percent));
  bar.dataset.completed = String(run.completed);
  $("progress-bar").style.width = `${run.percent}%`;
  setText("progress-text", `${run.completed} / ${run.total} steps · ${run.percent}%`);
  setText("elapsed", run.elapsed);
  setText("remaining", run.remaining);
  setText("current-step", run.step === null ? "starting…" : `${run.step_number}/${run.total} · ${run.step}`);
  $("run-error").hidden = !run.error;
  setText("run-error", run.error);
  setText("timeline-count", `(latest ${run.timeline.length})`);
  replaceRows($("timeline"), run.timeline.map((s) => el("tr", { "data-status": s.status },
    el("td", { class: "num" }, s.number),
    el("td", {}, s.where || "—"),
    el("td", {}, s.name),
    el("td", { class: "num" }, s.planned),
    el("td", { class: s.late_ms > Math.max(5, 0.1 * s.planned_ms) ? "num late" : "num" }, s.actual),
    el("td", {}, s.status === "succeeded" ? "ok" : s.status))));
}

function renderAlarms(v) {
  const alarms = v.alarms;
  $("no-alarms").hidden = alarms.length > 0;
  $("alarms-table").hidden = alarms.length === 0;
  const active = alarms.filter((a) => a.active).length;
  $("alarm-count").textContent = active ? String(active) : "";
  replaceRows($("alarms"), alarms.map((a) => el("tr", { "data-state": a.state, "data-id": a.id, "data-key": a.key },
    el("td", { class: "severity" }, a.severity),
    el("td", {}, el("div", { class: "alarm-message" }, a.message || a.key),
      el("div", { class: "quiet" }, `${a.key} · ${a.value ?? "—"} / limit ${a.limit ?? "—"} · raised ${clock(a.raised_at)}`)),
    el("td", { class: "alarm-state" }, ...a.state_text.split(" · ").map((w) => el("div", {}, w)), a.acked_by ? el("div", { class: "quiet" }, `by ${a.acked_by}`) : null))));
  const badge = $("alarm-badge");
  const unacked = alarms.filter((a) => a.state === "active_unacked").length;
  badge.hidden = active === 0;
  badge.dataset.up = unacked ? "false" : "unknown";
  badge.textContent = `${active} ALARM${active === 1 ? "" : "S"}${unacked ? ` · ${unacked} unacked` : ""}`;
}

function renderValves(v) {
  replaceRows($("valves"), v.valves.map((x) => el("li",
    { "data-open": x.open === null ? "unknown" : String(x.open), "data-key": x.key, class: x.stale ? "stale" : null },
    x.name, el("span", { class: "v-state" }, x.text),
    x.cycles === null || x.cycles === undefined ? null : el("span", { class: "cycles" }, `${x.cycles.toLocaleString()} cycles`))));
}

function renderInterlocks(v) {
  const s = v.safety;
  setText("interlocks", s.interlocks === 0 ? "No interlocks configured."
    : `Interlocks: ${s.interlocks} configured · ${s.failing.length ? `${s.failing.length} not met` : "all met"}` +
      (s.trips ? ` · ${s.trips} trips since start` : ""));
  replaceRows($("interlocks-failing"), s.failing.map((f) => el("li", { "data-kind": f.kind }, `${f.kind}: ${f.text}`)));
}

function renderGroups(v) {
  setText("values-age", v.plc.stale ? `NOT LIVE · last reading ${clock(v.plc.last_frame_at)}` : `as of ${clock(v.plc.last_frame_at)}`);
  $("values-age").classList.toggle("ok", false);
  replaceRows($("groups"), v.groups.map((g) => el("div", { class: g.stale ? "group stale" : "group", "data-component": g.component },
    el("h3", {}, g.title),
    el("table", {}, el("tbody", {}, ...g.rows.map((r) => el("tr", { class: r.fault ? "fault" : null, "data-key": r.key },
      el("td", {}, r.label),
      el("td", { class: "val" }, r.text),
      el("td", { class: "sp" }, r.sp === null ? "" : `SP ${r.sp}`))))))));
}

function renderRuns(v) {
  $("no-runs").hidden = v.runs.length > 0;
  $("runs-table").hidden = v.runs.length === 0;
  replaceRows($("runs"), v.runs.map((r) => el("tr", { "data-status": r.status, title: r.error || "" },
    el("td", {}, r.recipe),
    el("td", {}, r.status, r.error ? el("div", { class: "quiet" }, r.error) : null),
    el("td", {}, clock(r.started_at)),
    el("td", { class: "num" }, r.duration),
    el("td", { class: "num" }, `${r.completed}/${r.total}`))));
}

function renderFooter(v) {
  const a = v.agent;
  setText("agent", `ald-agent ${a.version} · ${a.color} · ${a.instance} · up ${a.uptime}`);
  setText("health", `health: ${v.health.status}${v.health.reasons.length ? " — " + v.health.reasons.join("; ") : ""}`);
}

// --- trends: uPlot charts over a client-side copy of the agent's ring buffer ----------------------------

// at least two minutes wide, growing to the whole window as history fills
function xRange(_u, min, max) {
  if (min === null || max === null) { const now = Date.now() / 1000; return [now - 120, now]; }
  return [max - Math.min(TREND_WINDOW_S, Math.max(120, max - min)), max];
}

const PALETTE = ["#1565c0", "#c62828", "#2e7d32", "#6a1b9a", "#ef6c00", "#00838f"];

function renderTrends(v) {
  const t = v.trends;
  const signature = JSON.stringify([t.keys, t.charts]);
  if (signature !== trend.signature) {       // first view, or the map changed: new charts
    trend.plots.forEach((p) => p.destroy());
    trend = { signature, rows: [], plots: [] };
    const box = $("charts");
    box.replaceChildren();
    if (typeof uPlot === "undefined") { box.append(el("p", { class: "quiet" }, "chart library not loaded")); return; }
    for (const chart of t.charts) {
      const plot = el("div", { class: "plot" });
      box.append(el("div", { class: "chart", "data-title": chart.title }, el("h3", {}, `${chart.title} (${chart.unit})`), plot));
      const width = Math.max(200, plot.clientWidth || box.clientWidth || 600);
      const series = [{}].concat(chart.labels.map((label, i) => ({
        label, stroke: PALETTE[i % PALETTE.length], width: 1.5, dash: label.toLowerCase().includes("setpoint") ? [6, 4] : undefined,
      })));
      const u = new uPlot({ width, height: 150, series, legend: { live: false },
        axes: [{}, { size: 56 }], scales: { x: { time: true, range: xRange } } }, [[]].concat(chart.series.map(() => [])), plot);
      u.columns = chart.series;
      trend.plots.push(u);
    }
  }
  const last = trend.rows.length ? trend.rows[trend.rows.length - 1][0] : -Infinity;
  for (const row of t.rows) if (row[0] > last) trend.rows.push(row);
  const cutoff = (trend.rows.length ? trend.rows[trend.rows.length - 1][0] : 0) - TREND_WINDOW_S;
  while (trend.rows.length && trend.rows[0][0] < cutoff) trend.rows.shift();
  const xs = trend.rows.map((r) => r[0]);
  for (const u of trend.plots) u.setData([xs].concat(u.columns.map((c) => trend.rows.map((r) => r[c + 1]))));
}

function resizeCharts() {
  for (const u of trend.plots) {
    const w = u.root.parentElement.clientWidth;
    if (w > 0 && Math.abs(w - u.width) > 4) u.setSize({ width: w, height: 150 });
  }
}

// --- the stream ---------------------------------------------------------------------------------------

function render(v) {
  lastViewAt = Date.now();
  document.body.classList.remove("waiting", "disconnected");
  $("link-lost").hidden = true;
  for (const part of [renderHeader, renderProblems, renderRun, renderAlarms, renderValves, renderInterlocks, renderGroups, renderRuns, renderFooter, renderTrends]) {
    try { part(v); } catch (err) { console.error(part.name, err); }
  }
}

function connect() {
  source = new EventSource("/events");
  source.addEventListener("view", (event) => render(JSON.parse(event.data)));
  source.addEventListener("failure", () => { $("link-lost").hidden = false; });
  source.onerror = () => {
    if (source.readyState === EventSource.CLOSED) { setTimeout(connect, RECONNECT_MS); }
  };
}

setInterval(() => {
  if (Date.now() - (lastViewAt || loadedAt) > STALE_AFTER_MS) {  // gone, or never reached
    document.body.classList.add("disconnected");
    $("link-lost").hidden = false;
    if (lastViewAt) setText("updated", `last update ${new Date(lastViewAt).toLocaleTimeString([], { hour12: false })}`);
  }
}, 1000);
window.addEventListener("resize", resizeCharts);
document.addEventListener("DOMContentLoaded", () => { connect(); resizeCharts(); });
