// The trainctl dashboard: a job list and a page per job, fed by the JSON API and kept live
// with Server-Sent Events. Routes live in the URL hash: #/ (list), #/jobs/NAME (a job),
// #/experiments and #/experiments/NAME (experiments.js).
"use strict";

const app = document.getElementById("app");
const PAGE = 50;
const ENDED = ["Succeeded", "Failed"];
// Whatever the current view left running (timers, event streams); stopped on navigation.
let cleanups = [];

function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    // Through the CSSOM: the Content-Security-Policy refuses inline style attributes.
    else if (k === "style") el.style.cssText = v;
    else if (v !== undefined && v !== null) el.setAttribute(k, v);
  }
  for (const c of children.flat()) el.append(c instanceof Node ? c : String(c ?? ""));
  return el;
}

async function getJson(url) {
  const r = await fetch(url);
  const body = await r.json().catch(() => ({ error: r.statusText }));
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}

function age(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d`;
}
const since = (iso) => (iso ? age((Date.now() - Date.parse(iso)) / 1000) : "-");
const phaseBadge = (p) => h("span", { class: `phase ${p}` }, p);
// The mark of a job that held GPUs while barely using them (its GpuIdle warning as tooltip).
const idleBadge = (s) => s.gpuIdle ? h("span", { class: "phase gpu-idle", title: s.gpuIdle }, "GPU idle") : "";
const replicaName = (id) => `${String(id.role).toLowerCase()}-${id.index}`;
const dash = (v) => (v === null || v === undefined || v === "" || (Array.isArray(v) && !v.length) ? "-" : v);

function table(header, rows) {
  return h("table", {},
    h("thead", {}, h("tr", {}, header.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))));
}

// Replicas running (locally) or with a live pod (on a cluster), per role summed.
const activeReplicas = (s) => Object.values(s.replicaStatuses || {}).reduce((n, r) => n + (r.active || 0), 0);
// A job's replicas: rows on a job page; a count in a cluster's job list.
const replicaCount = (s) => (Array.isArray(s.replicas) ? s.replicas.length : s.replicas || 0);

// Adds the points of an `append` event to the series a view holds.
function appendMetrics(metrics, added) {
  for (const run of added.runs) {
    let mine = metrics.runs.find((r) => r.run === run.run);
    if (!mine) { mine = { run: run.run, tags: {} }; metrics.runs.push(mine); metrics.runs.sort((a, b) => a.run.localeCompare(b.run)); }
    for (const [tag, series] of Object.entries(run.tags)) {
      const held = mine.tags[tag];
      if (held) { held.points.push(...series.points); held.total = series.total; } else mine.tags[tag] = series;
    }
  }
  metrics.warnings = added.warnings;
}

// ---- the job list --------------------------------------------------------------------

function listView(params) {
  const state = { phase: params.get("phase") || "", q: params.get("q") || "", offset: +params.get("offset") || 0 };
  const search = h("input", { type: "search", placeholder: "Filter by name", value: state.q, id: "filter-name" });
  const phase = h("select", { id: "filter-phase" });
  const prev = h("button", { id: "prev" }, "‹ Newer");
  const next = h("button", { id: "next" }, "Older ›");
  const count = h("span", { class: "muted", id: "count" });
  const body = h("div", { class: "panel", id: "jobs" });
  app.replaceChildren(h("div", { class: "toolbar" }, search, phase, h("span", { class: "spacer" }), count, prev, next), body);

  const go = () => {
    const p = new URLSearchParams();
    if (state.phase) p.set("phase", state.phase);
    if (state.q) p.set("q", state.q);
    if (state.offset) p.set("offset", state.offset);
    history.replaceState(null, "", `#/?${p}`);
    load();
  };
  search.addEventListener("input", () => { state.q = search.value; state.offset = 0; go(); });
  phase.addEventListener("change", () => { state.phase = phase.value; state.offset = 0; go(); });
  prev.addEventListener("click", () => { state.offset = Math.max(0, state.offset - PAGE); go(); });
  next.addEventListener("click", () => { state.offset += PAGE; go(); });

  let loading = 0;
  async function load() {
    const mine = ++loading;
    const p = new URLSearchParams({ offset: state.offset, limit: PAGE });
    if (state.phase) p.set("phase", state.phase);
    if (state.q) p.set("q", state.q);
    let list;
    try { list = await getJson(`/api/jobs?${p}`); } catch (e) {
      body.replaceChildren(h("p", { class: "error" }, `Cannot list jobs: ${e.message}`));
      return;
    }
    if (mine !== loading) return;
    const all = Object.values(list.phases).reduce((a, b) => a + b, 0);
    phase.replaceChildren(h("option", { value: "" }, `All phases (${all})`),
      ...Object.entries(list.phases).map(([p, n]) => h("option", { value: p }, `${p} (${n})`)));
    phase.value = state.phase;
    const first = list.total ? list.offset + 1 : 0;
    count.textContent = `${first}–${list.offset + list.items.length} of ${list.total}`;
    prev.disabled = list.offset === 0;
    next.disabled = list.offset + list.items.length >= list.total;
    if (!list.items.length) {
      body.replaceChildren(h("p", { class: "muted", style: "padding: 12px" }, all ? "No job matches." : "No jobs yet. Start one with trainctl run or trainctl submit."));
      return;
    }
    body.replaceChildren(table(["Name", "Phase", "Replicas", "Restarts", "Age", "Reason"],
      list.items.map((j) => {
        return [h("a", { href: `#/jobs/${encodeURIComponent(j.metadata.name)}`, class: "job-link" }, j.metadata.name),
          h("span", {}, phaseBadge(j.status.phase), idleBadge(j.status)), `${activeReplicas(j.status)}/${replicaCount(j.status)}`, j.status.restarts,
          since(j.metadata.creationTimestamp), dash(j.status.reason)];
      })));
  }
  load();
  const timer = setInterval(load, 3000);
  cleanups.push(() => clearInterval(timer));
}

// ---- one job ---------------------------------------------------------------------------

// A trial's job names its experiment (label trainctl.dev/experiment): a link back to it.
function experimentOf(job) {
  const name = (job.metadata.labels || {})["trainctl.dev/experiment"];
  if (!name) return [];
  return [h("span", {}, "Experiment ", h("a", { href: `#/experiments/${encodeURIComponent(name)}`, id: "experiment-link" }, name))];
}

function jobView(name) {
  const head = h("div", { id: "job-head" });
  const tables = h("div", {});
  const slider = h("input", { type: "range", min: 0, max: 0.99, step: 0.01, value: 0.6, id: "smoothing" });
  const sliderValue = h("span", { class: "muted" }, "0.60");
  const charts = h("div", { class: "grid", id: "charts" }, h("p", { class: "muted" }, "No metrics yet."));
  const tabs = h("div", { class: "tabs", id: "log-tabs" });
  const log = h("pre", { class: "log", id: "log" });
  app.replaceChildren(head,
    h("h2", {}, "Metrics"), h("div", { class: "toolbar" }, h("label", {}, "Smoothing "), slider, sliderValue), charts,
    h("h2", {}, "Logs"), tabs, log, tables);

  let job = null, metrics = null, replica = "", attempt = null, logStream = null;
  const redraw = () => { if (metrics) drawMetrics(charts, metrics, +slider.value); };
  slider.addEventListener("input", () => { sliderValue.textContent = (+slider.value).toFixed(2); redraw(); });
  window.addEventListener("resize", redraw);
  cleanups.push(() => window.removeEventListener("resize", redraw));

  function stream(url, handlers) {
    const es = new EventSource(url);
    for (const [event, fn] of Object.entries(handlers)) es.addEventListener(event, (e) => fn(JSON.parse(e.data)));
    es.addEventListener("end", () => es.close());
    cleanups.push(() => es.close());
    return es;
  }

  function followLog() {
    if (logStream) logStream.close();
    log.textContent = "";
    const p = new URLSearchParams(replica ? { replica } : {});
    if (attempt !== null) p.set("attempt", attempt);
    logStream = stream(`/api/jobs/${encodeURIComponent(name)}/logs/live?${p}`, {
      log: (d) => {
        const atBottom = log.scrollTop + log.clientHeight >= log.scrollHeight - 4;
        log.append(d.text);
        // Keep the page light: only the last 400 KB of text stay on screen.
        if (log.textContent.length > 400000) log.textContent = log.textContent.slice(-300000);
        if (atBottom) log.scrollTop = log.scrollHeight;
      },
    });
  }

  function renderTabs() {
    const names = (job.status.replicas || []).map((r) => replicaName(r.replica));
    tabs.replaceChildren(...["", ...names].map((n) => h("button", {
      class: n === replica ? "active" : "", "data-replica": n,
      onclick: () => { replica = n; attempt = null; renderTabs(); followLog(); },
    }, n || "all replicas")));
  }

  function renderJob() {
    const s = job.status;
    head.replaceChildren(
      h("h1", {}, name, phaseBadge(s.phase), idleBadge(s)),
      h("div", { class: "facts" },
        h("span", {}, "Reason ", h("b", {}, dash(s.reason))),
        h("span", {}, "Restarts ", h("b", {}, s.restarts)),
        h("span", {}, "Created ", h("b", {}, `${since(job.metadata.creationTimestamp)} ago`)),
        h("span", {}, "GPUs ", h("b", {}, dash((s.gpus || []).join(",")))),
        ...experimentOf(job)),
      h("p", { class: "muted" }, dash(s.message)));
    const now = Date.now() / 1000;
    const replicas = s.replicas || [];
    // A cluster job's replicas are pods; a local job's are processes.
    const onCluster = replicas.some((r) => "pod" in r);
    const viewLog = (a) => h("button", {
      class: "view-log", "data-replica": replicaName(a.replica), "data-attempt": a.attempt,
      onclick: () => { replica = replicaName(a.replica); attempt = a.attempt; renderTabs(); followLog(); },
    }, "View log");
    const replicaTable = onCluster
      ? table(["Replica", "Pod", "Node", "State", "Attempt", "Exit", "Reason"],
        replicas.map((r) => [replicaName(r.replica), dash(r.pod), dash(r.node), r.state, r.attempt, dash(r.exitCode), dash(r.reason)]))
      : table(["Replica", "State", "Attempt", "Exit", "PID", "Port", "GPUs"],
        replicas.map((r) => [replicaName(r.replica), r.state, r.attempt < 0 ? "-" : r.attempt, dash(r.exitCode),
          r.pid || "-", r.port || "-", dash((r.gpus || []).join(","))]));
    const attemptTable = onCluster
      ? table(["Replica", "Attempt", "Log", ""],
        (s.attempts || []).map((a) => [replicaName(a.replica), a.attempt, a.log, viewLog(a)]))
      : table(["Replica", "Attempt", "Started", "Duration", "Exit", ""],
        (s.attempts || []).map((a) => [replicaName(a.replica), a.attempt, `${age(now - a.started)} ago`,
          a.finished ? `${(a.finished - a.started).toFixed(1)}s` : "running", dash(a.exitCode), viewLog(a)]));
    tables.replaceChildren(
      h("h2", {}, "Replicas"),
      h("div", { class: "panel", id: "replicas" }, replicaTable),
      h("h2", {}, "Attempts"),
      h("div", { class: "panel", id: "attempts" }, attemptTable),
      ...(s.conditions ? [h("h2", {}, "Conditions"), h("div", { class: "panel", id: "conditions" },
        table(["Type", "Status", "Reason", "Message", "Since"], s.conditions.map((c) =>
          [c.type, c.status, c.reason, h("span", { class: "wrap" }, c.message), `${since(c.lastTransitionTime)} ago`])))] : []),
      h("h2", {}, "Events"),
      h("div", { class: "panel", id: "events" }, table(["Age", "Type", "Reason", "Message"],
        (s.events || []).map((e) => [age(now - e.time), e.type, e.reason, h("span", { class: "wrap" }, e.message)]))));
  }

  async function refresh() {
    try { job = await getJson(`/api/jobs/${encodeURIComponent(name)}`); } catch (e) {
      head.replaceChildren(h("h1", {}, name), h("p", { class: "error" }, e.message));
      return false;
    }
    const first = !tabs.childElementCount;
    renderJob();
    if (first) { renderTabs(); followLog(); }
    return true;
  }

  refresh().then((ok) => {
    if (!ok) return;
    stream(`/api/jobs/${encodeURIComponent(name)}/metrics/live`, {
      metrics: (m) => { metrics = m; redraw(); },
      append: (m) => { if (metrics) { appendMetrics(metrics, m); redraw(); } },
    });
    if (ENDED.includes(job.status.phase)) return;
    const timer = setInterval(async () => {
      await refresh();
      if (ENDED.includes(job.status.phase)) clearInterval(timer);
    }, 2000);
    cleanups.push(() => clearInterval(timer));
  });
}

// One chart per tag, every run that has it overlaid.
function drawMetrics(container, metrics, smoothing) {
  const byTag = new Map();
  metrics.runs.forEach((run, i) => {
    for (const [tag, series] of Object.entries(run.tags)) {
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push({ name: run.run, color: PALETTE[i % PALETTE.length], points: series.points, total: series.total });
    }
  });
  if (!byTag.size) return;
  const existing = new Map([...container.querySelectorAll(".chart")].map((c) => [c.dataset.tag, c]));
  const cards = [...byTag.keys()].sort().map((tag) => {
    let card = existing.get(tag);
    if (!card) {
      card = h("div", { class: "chart panel", "data-tag": tag }, h("h3", {}, tag), h("canvas", {}), h("div", { class: "legend" }));
    }
    return card;
  });
  container.replaceChildren(...cards);
  for (const card of cards) {
    const series = byTag.get(card.dataset.tag);
    card.querySelector(".legend").replaceChildren(...series.map((s) =>
      h("span", {}, h("i", { style: `background:${s.color}` }), `${s.name} · ${s.total} points`)));
    drawChart(card.querySelector("canvas"), series, smoothing);
  }
}

// ---- routing ---------------------------------------------------------------------------

function route() {
  cleanups.forEach((c) => c());
  cleanups = [];
  const [path, query] = location.hash.replace(/^#/, "").split("?");
  const job = path.match(/^\/jobs\/([^/]+)$/);
  const experiment = path.match(/^\/experiments\/([^/]+)$/);
  for (const link of document.querySelectorAll("header nav a")) {
    link.classList.toggle("active", (link.dataset.view === "experiments") === path.startsWith("/experiments"));
  }
  if (job) jobView(decodeURIComponent(job[1]));
  else if (experiment) experimentView(decodeURIComponent(experiment[1]));
  else if (path === "/experiments") experimentsView();
  else listView(new URLSearchParams(query || ""));
}
window.addEventListener("hashchange", route);
getJson("/api/source").then((s) => {
  document.getElementById("subtitle").textContent =
    s.kind === "cluster" ? `training jobs in namespace ${s.namespace} of ${s.server}` : "training jobs on this machine";
}).catch(() => {});
route();
