// Line charts on a canvas: several runs overlaid, each drawn faintly as recorded and
// strongly after smoothing (an exponential moving average with TensorBoard's debiasing).
"use strict";

const PALETTE = ["#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#ca8a04", "#db2777"];

// Smoothed copy of `points` ([[step, value], ...]); weight 0 leaves them as they are.
function smooth(points, weight) {
  let last = 0, debias = 0;
  return points.map(([step, value]) => {
    if (value === null || !isFinite(value)) return [step, value];
    last = last * weight + (1 - weight) * value;
    debias = debias * weight + (1 - weight);
    return [step, last / debias];
  });
}

// About `count` round numbers covering [lo, hi].
function ticks(lo, hi, count) {
  if (hi === lo) { hi = lo + 1; lo = lo - 1; }
  const raw = (hi - lo) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw);
  const out = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) out.push(t);
  return out;
}

function label(v) {
  if (v === 0) return "0";
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(1);
  return String(+v.toPrecision(4));
}

// Draws `series` ([{name, color, points}]) on `canvas`; records how many points it drew in
// the canvas's data-points attribute.
function drawChart(canvas, series, smoothing) {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * dpr);
  canvas.height = Math.round(height * dpr);
  const g = canvas.getContext("2d");
  g.setTransform(dpr, 0, 0, dpr, 0, 0);
  g.clearRect(0, 0, width, height);
  const finite = (p) => p[1] !== null && isFinite(p[1]);
  const all = series.flatMap((s) => s.points.filter(finite));
  canvas.dataset.points = String(series.reduce((n, s) => n + s.points.length, 0));
  if (all.length === 0) {
    g.fillStyle = "#6b7280";
    g.fillText("no points yet", 12, 20);
    return;
  }
  let [x0, x1] = [Math.min(...all.map((p) => p[0])), Math.max(...all.map((p) => p[0]))];
  let [y0, y1] = [Math.min(...all.map((p) => p[1])), Math.max(...all.map((p) => p[1]))];
  if (x0 === x1) { x0 -= 1; x1 += 1; }
  const pad = (y1 - y0) * 0.05 || Math.abs(y0) * 0.05 || 1;
  y0 -= pad; y1 += pad;
  const left = 56, right = 12, top = 8, bottom = 24;
  const px = (x) => left + ((x - x0) / (x1 - x0)) * (width - left - right);
  const py = (y) => top + (1 - (y - y0) / (y1 - y0)) * (height - top - bottom);
  g.font = "11px system-ui, sans-serif";
  g.strokeStyle = "#e5e7eb"; g.fillStyle = "#6b7280"; g.lineWidth = 1;
  g.textAlign = "right"; g.textBaseline = "middle";
  for (const t of ticks(y0, y1, 5)) {
    g.beginPath(); g.moveTo(left, py(t)); g.lineTo(width - right, py(t)); g.stroke();
    g.fillText(label(t), left - 6, py(t));
  }
  g.textAlign = "center"; g.textBaseline = "top";
  for (const t of ticks(x0, x1, 6)) {
    if (t < x0 || t > x1) continue;
    g.fillText(label(t), px(t), height - bottom + 6);
  }
  const line = (points, color, alpha, lineWidth) => {
    g.globalAlpha = alpha; g.strokeStyle = color; g.lineWidth = lineWidth;
    g.beginPath();
    let pen = false;
    for (const p of points) {
      if (!finite(p)) { pen = false; continue; }
      if (pen) g.lineTo(px(p[0]), py(p[1])); else g.moveTo(px(p[0]), py(p[1]));
      pen = true;
    }
    g.stroke();
    if (points.length === 1) {
      g.fillStyle = color;
      g.fillRect(px(points[0][0]) - 2, py(points[0][1]) - 2, 4, 4);
    }
    g.globalAlpha = 1;
  };
  for (const s of series) {
    if (smoothing > 0) {
      line(s.points, s.color, 0.25, 1);
      line(smooth(s.points, smoothing), s.color, 1, 2);
    } else {
      line(s.points, s.color, 1, 1.5);
    }
  }
}
