// Experiments: a list (#/experiments) and a page per experiment (#/experiments/NAME) with
// the trials table, the optimization history, a parallel-coordinates view of the parameters
// against the objective, and every trial's intermediate values; kept live over Server-Sent
// Events while the experiment runs. Uses app.js's helpers (h, table, getJson, ...) and
// chart.js's (drawChart, ticks, label, PALETTE).
"use strict";

// Trials that were stopped before the end: greyed in the curves, marked in the history.
const STOPPED = ["EarlyStopped", "Killed"];
const GREY = "#9ca3af";
const STATE_COLORS = { Succeeded: "#2563eb", Running: "#16a34a", EarlyStopped: "#ea580c", Killed: GREY, Failed: "#dc2626", MetricsUnavailable: "#dc2626" };

// An SVG element, as h() makes HTML ones (attributes only: no inline style under the CSP).
function svg(tag, attrs, ...children) {
  const el = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs || {})) if (v !== undefined && v !== null) el.setAttribute(k, v);
  for (const c of children.flat()) el.append(c instanceof Node ? c : String(c ?? ""));
  return el;
}

const num = (v) => (v === null || v === undefined ? "-" : typeof v === "number" ? String(+v.toPrecision(6)) : String(v));
const stateBadge = (st) => h("span", { class: `phase ${st}` }, st);

// "4 trials: 1 Running, 3 Succeeded" with the states that have any.
function countsText(c) {
  const parts = Object.entries(c).filter(([k, n]) => k !== "total" && n > 0).map(([k, n]) => `${n} ${k}`);
  return `${c.total} trials${parts.length ? ": " + parts.join(", ") : ""}`;
}

// ---- the list ----------------------------------------------------------------------------

function experimentsView() {
  const body = h("div", { class: "panel", id: "experiments" });
  app.replaceChildren(h("h1", {}, "Experiments"), body);
  async function load() {
    let list;
    try { list = await getJson("/api/experiments"); } catch (e) {
      body.replaceChildren(h("p", { class: "error" }, `Cannot list experiments: ${e.message}`));
      return;
    }
    if (!list.items.length) {
      body.replaceChildren(h("p", { class: "muted", style: "padding: 12px" }, "No experiments yet. Start one with trainctl run experiment.yaml."));
      return;
    }
    body.replaceChildren(table(["Name", "Phase", "Best objective", "Trials", "Age", "Reason"],
      list.items.map((e) => [
        h("a", { href: `#/experiments/${encodeURIComponent(e.name)}`, class: "experiment-link" }, e.name),
        phaseBadge(e.phase),
        e.best ? `${e.objective.metric}=${num(e.best.value)} (${e.best.job})` : "-",
        countsText(e.trials), age(e.ageSeconds), dash(e.reason)])));
  }
  load();
  const timer = setInterval(load, 3000);
  cleanups.push(() => clearInterval(timer));
}

// ---- one experiment ------------------------------------------------------------------------

function experimentView(name) {
  const head = h("div", { id: "experiment-head" });
  const history = h("div", { class: "chart panel", id: "history" });
  const parallel = h("div", { class: "chart panel", id: "parallel" });
  const curves = h("div", { class: "chart panel", id: "curves", "data-tag": "intermediate" },
    h("h3", {}, "Intermediate values"), h("canvas", {}), h("div", { class: "legend" }));
  const stateFilter = h("select", { id: "trial-state" });
  const trials = h("div", { class: "panel", id: "trials" });
  app.replaceChildren(head, h("div", { class: "grid" }, history, parallel, curves),
    h("h2", {}, "Trials"), h("div", { class: "toolbar" }, stateFilter), trials);

  let exp = null, filter = "", sort = null;
  stateFilter.addEventListener("change", () => { filter = stateFilter.value; renderTrials(); });

  function render() {
    const o = exp.objective;
    if (sort === null) sort = { key: "objective", dir: o.type === "maximize" ? -1 : 1 };
    head.replaceChildren(
      h("h1", {}, name, phaseBadge(exp.phase)),
      h("div", { class: "facts" },
        h("span", {}, "Objective ", h("b", {}, `${o.type} ${o.metric}${o.goal !== undefined && o.goal !== null ? ` (goal ${o.goal})` : ""}`)),
        h("span", {}, "Algorithm ", h("b", {}, exp.algorithm)),
        h("span", {}, "Best ", h("b", { id: "best" }, exp.best ? `${num(exp.best.value)} · ${exp.best.job}` : "-")),
        h("span", {}, "Trials ", h("b", { id: "counts" }, countsText(exp.trials))),
        h("span", {}, "Created ", h("b", {}, `${age(exp.ageSeconds)} ago`))),
      h("p", { class: "muted" }, [exp.reason, exp.message].filter(Boolean).join(": ")));
    drawHistory(history, exp);
    drawParallel(parallel, exp);
    drawCurves(curves, exp);
    renderTrials();
  }

  function renderTrials() {
    const states = [...new Set(exp.trialList.map((t) => t.state))].sort();
    stateFilter.replaceChildren(h("option", { value: "" }, `All states (${exp.trialList.length})`),
      ...states.map((st) => h("option", { value: st }, `${st} (${exp.trialList.filter((t) => t.state === st).length})`)));
    stateFilter.value = states.includes(filter) ? filter : "";
    const params = exp.parameters.map((p) => p.name);
    const extra = exp.objective.additionalMetrics || [];
    const key = (t) => (sort.key === "objective" ? t.objective : t.number);
    const rows = exp.trialList.filter((t) => !stateFilter.value || t.state === stateFilter.value).sort((a, b) => {
      const [x, y] = [key(a), key(b)];
      if (x === null || x === undefined) return y === null || y === undefined ? a.number - b.number : 1;
      if (y === null || y === undefined) return -1;
      return (x - y) * sort.dir || a.number - b.number;
    });
    const sorter = (k, text) => h("button", {
      class: `sort${sort.key === k ? " active" : ""}`, id: `sort-${k}`,
      onclick: () => { sort = { key: k, dir: sort.key === k ? -sort.dir : k === "objective" && exp.objective.type === "maximize" ? -1 : 1 }; renderTrials(); },
    }, `${text}${sort.key === k ? (sort.dir < 0 ? " ↓" : " ↑") : ""}`);
    trials.replaceChildren(table(
      [sorter("number", "Trial"), "State", ...params, sorter("objective", exp.objective.metric), ...extra, "Step", "Duration", "Message"],
      rows.map((t) => [
        h("a", { href: `#/jobs/${encodeURIComponent(t.job)}`, class: "job-link" }, t.job), stateBadge(t.state),
        ...params.map((p) => num(t.parameters[p])), num(t.objective), ...extra.map((m) => num(t.metrics[m])),
        dash(t.step), `${t.durationSeconds.toFixed(1)}s`, h("span", { class: "wrap" }, dash(t.message))])));
  }

  async function start() {
    try { exp = await getJson(`/api/experiments/${encodeURIComponent(name)}`); } catch (e) {
      head.replaceChildren(h("h1", {}, name), h("p", { class: "error" }, e.message));
      return;
    }
    render();
    if (exp.ended) return;
    const es = new EventSource(`/api/experiments/${encodeURIComponent(name)}/live`);
    es.addEventListener("experiment", (e) => { exp = JSON.parse(e.data); render(); });
    es.addEventListener("end", () => es.close());
    es.addEventListener("error", (e) => {
      if (e.data) head.append(h("p", { class: "error" }, JSON.parse(e.data).error));
    });
    cleanups.push(() => es.close());
  }
  const redraw = () => { if (exp) render(); };
  window.addEventListener("resize", redraw);
  cleanups.push(() => window.removeEventListener("resize", redraw));
  start();
}

// A plot area in `box` (titled), its width from the box; returns the SVG and its size.
function plotArea(box, title, height) {
  const width = Math.max(320, box.clientWidth - 24);
  const plot = svg("svg", { width, height, viewBox: `0 0 ${width} ${height}`, class: "plot" });
  return { plot, width, height, title: h("h3", {}, title) };
}

// A linear scale from [lo, hi] (widened when empty) onto [a, b].
function scale(lo, hi, a, b) {
  if (!(hi > lo)) { lo -= 1; hi += 1; }
  return Object.assign((v) => a + ((v - lo) / (hi - lo)) * (b - a), { lo, hi });
}

// The objective of every trial by trial number, the best-so-far line over succeeded
// trials, early-stopped trials drawn as crosses.
function drawHistory(box, exp) {
  const { plot, width, height, title } = plotArea(box, "Optimization history", 240);
  const points = exp.history;
  const left = 56, right = 12, top = 8, bottom = 28;
  const numbers = exp.trialList.map((t) => t.number);
  const x = scale(Math.min(0, ...numbers) - 0.5, Math.max(1, ...numbers) + 0.5, left, width - right);
  const values = points.length ? points.map((p) => p.value) : [0, 1];
  const [vlo, vhi] = [Math.min(...values), Math.max(...values)];
  const pad = (vhi - vlo) * 0.08 || Math.abs(vlo) * 0.05 || 1;
  const y = scale(vlo - pad, vhi + pad, height - bottom, top);
  for (const t of ticks(y.lo, y.hi, 5)) {
    plot.append(svg("line", { x1: left, x2: width - right, y1: y(t), y2: y(t), class: "grid-line" }),
      svg("text", { x: left - 6, y: y(t), class: "tick", "text-anchor": "end", "dominant-baseline": "middle" }, label(t)));
  }
  for (const t of ticks(x.lo, x.hi, 6).filter((t) => Number.isInteger(t) && t >= 0)) {
    plot.append(svg("text", { x: x(t), y: height - bottom + 16, class: "tick", "text-anchor": "middle" }, label(t)));
  }
  const best = points.filter((p) => p.bestSoFar !== null);
  if (best.length) {
    let d = `M${x(best[0].trial)},${y(best[0].bestSoFar)}`;
    for (const p of best.slice(1)) d += `H${x(p.trial)}V${y(p.bestSoFar)}`;
    d += `H${x(Math.max(...numbers))}`;
    plot.append(svg("path", { d, class: "best", fill: "none", stroke: "#111827", "stroke-width": 1.5 }));
  }
  for (const p of points) {
    const [cx, cy, color] = [x(p.trial), y(p.value), STATE_COLORS[p.state] || GREY];
    const mark = STOPPED.includes(p.state)
      ? svg("path", { d: `M${cx - 4},${cy - 4}L${cx + 4},${cy + 4}M${cx - 4},${cy + 4}L${cx + 4},${cy - 4}`, stroke: color, "stroke-width": 2 })
      : svg("circle", { cx, cy, r: 4, fill: p.state === "Running" ? "white" : color, stroke: color, "stroke-width": 1.5 });
    mark.setAttribute("class", `point ${p.state}`);
    mark.setAttribute("data-trial", p.trial);
    mark.append(svg("title", {}, `${p.job} (${p.state}): ${num(p.value)}`));
    plot.append(mark);
  }
  if (!points.length) plot.append(svg("text", { x: left + 6, y: top + 14, class: "tick" }, "no objective values yet"));
  const legend = h("div", { class: "legend" },
    h("span", {}, h("i", { style: `background:${STATE_COLORS.Succeeded}` }), "succeeded"),
    h("span", {}, h("i", { style: `background:${STATE_COLORS.Running}` }), "running"),
    h("span", {}, h("i", { style: `background:${STATE_COLORS.EarlyStopped}` }), "✕ early stopped"),
    h("span", {}, h("i", { style: "background:#111827" }), `best so far (${exp.objective.type})`));
  box.replaceChildren(title, plot, legend);
}

// One vertical axis per parameter and one for the objective; a line per trial through its
// values, coloured from worst (light) to best (dark), stopped ones grey.
function drawParallel(box, exp) {
  const { plot, width, height, title } = plotArea(box, "Parameters against the objective", 240);
  const axes = exp.parameters.map((p) => {
    const fs = p.feasibleSpace || {};
    if (fs.list && fs.list.length) {
      const list = fs.list.map(String);
      return { name: p.name, at: (v) => (list.indexOf(String(v)) + 0.5) / list.length, ticks: list.map((v, i) => [v, (i + 0.5) / list.length]) };
    }
    const log = fs.distribution === "logUniform";
    const f = log ? Math.log10 : (v) => v;
    const [lo, hi] = [f(+fs.min), f(+fs.max)];
    const at = (v) => (hi > lo ? (f(+v) - lo) / (hi - lo) : 0.5);
    return { name: p.name, at, ticks: [[num(+fs.min), 0], [num(+fs.max), 1]] };
  });
  const values = exp.trialList.map((t) => t.objective).filter((v) => v !== null && v !== undefined);
  const [olo, ohi] = [Math.min(...values), Math.max(...values)];
  const oat = (v) => (ohi > olo ? (v - olo) / (ohi - olo) : 0.5);
  axes.push({ name: exp.objective.metric, at: oat, ticks: values.length ? [[num(olo), 0], [num(ohi), 1]] : [] });
  const top = 22, bottom = 20, left = 40, right = 64;
  const ax = (i) => left + (axes.length > 1 ? (i / (axes.length - 1)) * (width - left - right) : 0);
  const ay = (f) => height - bottom - f * (height - top - bottom);
  const goodness = (v) => (exp.objective.type === "maximize" ? oat(v) : 1 - oat(v));
  // Worst trials first, so the best are drawn on top.
  const order = [...exp.trialList].sort((a, b) => (a.objective === null ? -1 : b.objective === null ? 1 : goodness(a.objective) - goodness(b.objective)));
  for (const t of order) {
    const has = t.objective !== null && t.objective !== undefined;
    const stopped = STOPPED.includes(t.state) || !has;
    const pts = axes.map((a, i) => {
      const v = i === axes.length - 1 ? t.objective : t.parameters[a.name];
      return v === null || v === undefined ? null : `${ax(i)},${ay(a.at(v))}`;
    }).filter(Boolean);
    const shade = has ? Math.round(200 - 170 * goodness(t.objective)) : 0;
    plot.append(svg("polyline", {
      points: pts.join(" "), fill: "none", class: `trial-line ${t.state}`, "data-trial": t.number,
      stroke: stopped ? GREY : `rgb(${shade}, ${shade + 20}, 235)`, "stroke-width": stopped ? 1 : 1.8,
      "stroke-dasharray": stopped ? "4 3" : null,
    }, svg("title", {}, `${t.job}: ${exp.objective.metric}=${num(t.objective)}`)));
  }
  axes.forEach((a, i) => {
    plot.append(svg("line", { x1: ax(i), x2: ax(i), y1: top, y2: height - bottom, class: "axis" }),
      svg("text", { x: ax(i), y: top - 8, class: "axis-name", "text-anchor": "middle" }, a.name));
    for (const [text, f] of a.ticks) plot.append(svg("text", { x: ax(i) + 4, y: ay(f), class: "tick", "dominant-baseline": "middle" }, text));
  });
  box.replaceChildren(title, plot);
}

// Every trial's objective by step, overlaid; stopped trials grey, drawn underneath.
function drawCurves(box, exp) {
  const series = exp.trialList.map((t, i) => ({
    name: t.job, state: t.state, total: t.intermediate.length,
    color: STOPPED.includes(t.state) ? GREY : PALETTE[i % PALETTE.length], points: t.intermediate,
  })).sort((a, b) => STOPPED.includes(b.state) - STOPPED.includes(a.state));
  box.querySelector("h3").textContent = `Intermediate ${exp.objective.metric} by step`;
  box.querySelector(".legend").replaceChildren(...series.map((s) =>
    h("span", { class: STOPPED.includes(s.state) ? "stopped" : "" }, h("i", { style: `background:${s.color}` }), `${s.name} · ${s.state}`)));
  drawChart(box.querySelector("canvas"), series, 0);
}
