// MoMo Guard live dashboard: polls /dashboard/data every second and redraws; no libraries, no outside requests.
"use strict";

const POLL_MS = 1000;
const STALE_MS = 5000;
const css = getComputedStyle(document.documentElement);
const color = (name) => css.getPropertyValue(`--${name}`).trim();
let lastOk = 0;

function fmtNumber(value, digits = 0) {
  if (value === null || value === undefined || !isFinite(value)) return "–";
  if (Math.abs(value) >= 1e6) return `${(value / 1e6).toFixed(2)}M`;
  if (Math.abs(value) >= 1e4) return `${(value / 1e3).toFixed(1)}k`;
  return value.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
}

function fmtMs(ms) {
  if (ms === null || ms === undefined) return "–";
  return ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
}

function fmtPct(ratio, digits = 2) {
  return ratio === null || ratio === undefined ? "–" : `${(100 * ratio).toFixed(digits)}%`;
}

function setText(id, text) {
  document.getElementById(id).textContent = text;
}

function sum(values) {
  return Object.values(values || {}).reduce((a, b) => a + b, 0);
}

// A canvas sized for the screen's pixel ratio, with its drawing context and CSS size.
function surface(canvas) {
  const ratio = window.devicePixelRatio || 1;
  const rect = canvas.getBoundingClientRect();
  canvas.width = Math.max(1, Math.round(rect.width * ratio));
  canvas.height = Math.max(1, Math.round(rect.height * ratio));
  const ctx = canvas.getContext("2d");
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, rect.width, rect.height);
  ctx.font = "11px system-ui, sans-serif";
  return { ctx, w: rect.width, h: rect.height };
}

// The smallest 1, 2 or 5 times a power of ten at or above `value`, so axis ticks are round numbers.
function niceCeil(value) {
  if (!(value > 0)) return 1;
  const power = Math.pow(10, Math.floor(Math.log10(value)));
  for (const step of [1, 2, 5, 10]) if (step * power >= value) return step * power;
  return 10 * power;
}

// A round axis: top is 1, 2 or 5 times a power of ten, split in round steps shown with the decimals they need.
function axisScale(max) {
  const top = niceCeil(max);
  const lead = Math.round(top / Math.pow(10, Math.floor(Math.log10(top))));
  const divisions = lead === 5 ? 5 : 4;
  const step = top / divisions;
  const decimals = Math.min(3, (String(+step.toPrecision(6)).split(".")[1] || "").length);
  return { top, divisions, step, decimals };
}

function axisNumber(v, decimals) {
  return fmtNumber(v, decimals);
}

// Lines over time; the time axis grows with the history, from one minute up to `maxSpan` seconds.
function lineChart(canvas, times, maxSpan, series, format = axisNumber) {
  const { ctx, w, h } = surface(canvas);
  const values = series.flatMap((s) => s.values.filter((v) => v !== null && isFinite(v)));
  const { top, divisions, step: tick, decimals } = axisScale(Math.max(0, ...values));
  const end = times.length ? times[times.length - 1] : Date.now() / 1000;
  const span = Math.min(maxSpan, Math.max(60, Math.ceil((end - (times[0] ?? end)) / 60) * 60));
  const ticks = Array.from({ length: divisions + 1 }, (_, i) => i * tick);
  const labelWidth = Math.max(...ticks.map((v) => ctx.measureText(format(v, decimals)).width));
  const pad = { l: labelWidth + 12, r: 12, t: 8, b: 20 };
  const plotW = w - pad.l - pad.r;
  const plotH = h - pad.t - pad.b;
  const x = (t) => pad.l + plotW * (1 - (end - t) / span);
  const y = (v) => pad.t + plotH * (1 - v / top);

  ctx.strokeStyle = color("grid");
  ctx.fillStyle = color("muted");
  ctx.lineWidth = 1;
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (const v of ticks) {
    ctx.beginPath();
    ctx.moveTo(pad.l, y(v));
    ctx.lineTo(w - pad.r, y(v));
    ctx.stroke();
    ctx.fillText(format(v, decimals), pad.l - 6, y(v));
  }
  ctx.textBaseline = "top";
  const step = span > 120 ? 60 : 15;
  for (let ago = 0; ago <= span; ago += step) {
    ctx.textAlign = ago === 0 ? "right" : ago === span ? "left" : "center";
    const label = ago === 0 ? "now" : ago % 60 ? `-${ago}s` : `-${ago / 60}m`;
    ctx.fillText(label, x(end - ago), h - pad.b + 5);
  }

  ctx.lineWidth = 2;
  ctx.lineJoin = "round";
  for (const s of series) {
    ctx.strokeStyle = s.color;
    ctx.beginPath();
    let drawing = false;
    s.values.forEach((v, i) => {
      if (v === null || !isFinite(v) || end - times[i] > span) {
        drawing = false;
        return;
      }
      if (drawing) ctx.lineTo(x(times[i]), y(v));
      else ctx.moveTo(x(times[i]), y(v));
      drawing = true;
    });
    ctx.stroke();
  }
}

// Bars per score bucket on a log scale: genuine transactions outnumber fraud by hundreds to one.
function scoreChart(canvas, scores, threshold) {
  const { ctx, w, h } = surface(canvas);
  const pad = { l: 54, r: 8, t: 8, b: 20 };
  const plotW = w - pad.l - pad.r;
  const plotH = h - pad.t - pad.b;
  const counts = scores.counts;
  const bounds = scores.bounds.map((b) => (b === null ? 1 : Math.min(b, 1)));
  const top = Math.max(1, ...counts);
  const logTop = Math.log10(1 + top);
  const barW = plotW / Math.max(1, counts.length);
  const y = (c) => pad.t + plotH * (1 - Math.log10(1 + c) / logTop);

  ctx.strokeStyle = color("grid");
  ctx.fillStyle = color("muted");
  ctx.textAlign = "right";
  ctx.textBaseline = "middle";
  for (let power = 0; Math.pow(10, power) <= top; power++) {
    const c = Math.pow(10, power);
    ctx.beginPath();
    ctx.moveTo(pad.l, y(c));
    ctx.lineTo(w - pad.r, y(c));
    ctx.stroke();
    ctx.fillText(fmtNumber(c), pad.l - 6, y(c));
  }
  ctx.fillStyle = color("bars");
  counts.forEach((c, i) => {
    if (c > 0) ctx.fillRect(pad.l + i * barW + 1, y(c), Math.max(1, barW - 2), pad.t + plotH - y(c));
  });
  ctx.fillStyle = color("muted");
  ctx.textAlign = "center";
  ctx.textBaseline = "top";
  bounds.forEach((b, i) => {
    if (i % 4 === 3) ctx.fillText(`≤${b}`, pad.l + (i + 0.5) * barW, h - pad.b + 5);
  });
  if (threshold !== null) {
    // Bars are equal-width, buckets are not: place the threshold inside the bucket that holds it.
    let lower = 0;
    for (let i = 0; i < bounds.length; i++) {
      if (threshold <= bounds[i]) {
        const within = bounds[i] > lower ? (threshold - lower) / (bounds[i] - lower) : 0;
        const tx = pad.l + (i + within) * barW;
        ctx.strokeStyle = color("ink");
        ctx.lineWidth = 2;
        ctx.beginPath();
        ctx.moveTo(tx, pad.t);
        ctx.lineTo(tx, pad.t + plotH);
        ctx.stroke();
        break;
      }
      lower = bounds[i];
    }
  }
}

function render(data) {
  const now = data.now;
  const model = data.model;
  const throughput = now.allow_per_s + now.review_per_s + now.block_per_s;
  const worker = data.worker || {};
  setText("worker", `group ${worker.consumer_group} · ${(worker.partitions || []).length} partitions of ` +
    `${worker.topic}: ${(worker.partitions || []).map((p) => p.split(":").pop()).join(", ") || "none yet"}`);
  setText("window", data.window_s);
  setText("tile-throughput", `${fmtNumber(throughput, throughput < 10 ? 1 : 0)} tx/s`);
  setText("tile-throughput-sub", `${fmtNumber(sum(data.totals.scored))} scored since start`);
  setText("tile-block-rate", fmtPct(now.block_rate));
  setText("tile-block-rate-sub", `${fmtNumber(now.block_per_s, 1)} blocks/s · ${fmtNumber(data.totals.scored.block)} total`);
  const listed = data.totals.listed || {};
  setText("tile-review", fmtPct(throughput > 0 ? now.review_per_s / throughput : null));
  setText("tile-review-sub", `${fmtNumber(data.totals.scored.review || 0)} reviewed · ` +
    `${fmtNumber(sum(listed))} by lists (${fmtNumber(listed.block || 0)} block, ${fmtNumber(listed.allow || 0)} allow)`);
  setText("tile-late", fmtPct(now.late_rate));
  setText("tile-late-sub", `${fmtNumber(data.totals.late)} late since start`);
  setText("tile-p99", fmtMs(now.p99_ms));
  setText("tile-p99-sub", `p50 ${fmtMs(now.p50_ms)}`);
  setText("tile-dlq", `${fmtNumber(now.dead_letters_per_s, 1)} /s`);
  setText("tile-dlq-sub", `${fmtNumber(sum(data.totals.dead_letters))} dead letters since start`);
  setText("tile-lag", fmtNumber(now.lag));
  setText("tile-lag-sub", `messages behind, ${Object.keys(data.lag).length} partitions`);
  setText("tile-model", model.version ? `v${model.version}` : "–");
  const loaded = model.loaded_at ? new Date(model.loaded_at * 1000).toLocaleTimeString() : "–";
  const review = model.review_threshold ? ` · review ${fmtNumber(model.review_threshold, 4)}` : "";
  setText("tile-model-sub", `${model.name} · threshold ${fmtNumber(model.threshold, 3)}${review} · loaded ${loaded}`);
  document.title = `MoMo Guard · ${fmtNumber(throughput)} tx/s · v${model.version}`;

  const reasons = Object.entries(data.totals.dead_letters).filter(([, n]) => n > 0);
  setText("dlq-reasons", reasons.length ? reasons.map(([r, n]) => `${r}: ${fmtNumber(n)}`).join(" · ") : "none");
  const lags = Object.entries(data.lag);
  setText("lag-partitions", lags.length ? lags.map(([p, n]) => `p${p.split(":").pop()}: ${fmtNumber(n)}`).join(" · ") : "–");
  setText("scores-span", `last ${Math.round(data.scores.span_s)} s, transactions per score bucket, log scale`);

  const h = data.history;
  const span = 300;
  lineChart(document.getElementById("chart-throughput"), h.t, span, [
    { values: h.allow_per_s, color: color("allow") },
    { values: h.review_per_s, color: color("review") },
    { values: h.block_per_s, color: color("block") },
  ]);
  const percent = (values) => values.map((r) => (r === null ? null : 100 * r));
  const listedShare = h.listed_per_s.map((n, i) => {
    const all = h.allow_per_s[i] + h.review_per_s[i] + h.block_per_s[i];
    return all > 0 ? n / all : null;
  });
  lineChart(document.getElementById("chart-levers"), h.t, span, [
    { values: percent(listedShare), color: color("listed") },
    { values: percent(h.late_rate), color: color("late") },
  ], (v, decimals) => `${axisNumber(v, decimals)}%`);
  lineChart(document.getElementById("chart-block-rate"), h.t, span, [
    { values: percent(h.block_rate), color: color("block") },
  ], (v, decimals) => `${axisNumber(v, decimals)}%`);
  // Seconds once the slowest point passes 2 s, so the axis reads "2.5 s" rather than "2,500 ms".
  const inSeconds = Math.max(0, ...h.p99_ms.filter((v) => v !== null)) >= 2000;
  const latency = (values) => values.map((v) => (v === null ? null : inSeconds ? v / 1000 : v));
  lineChart(document.getElementById("chart-latency"), h.t, span, [
    { values: latency(h.p50_ms), color: color("p50") },
    { values: latency(h.p99_ms), color: color("p99") },
  ], (v, decimals) => `${axisNumber(v, decimals)} ${inSeconds ? "s" : "ms"}`);
  lineChart(document.getElementById("chart-dlq"), h.t, span, [
    { values: h.dead_letters_per_s, color: color("dlq") },
  ]);
  lineChart(document.getElementById("chart-lag"), h.t, span, [
    { values: h.lag, color: color("lag") },
  ]);
  scoreChart(document.getElementById("chart-scores"), data.scores, model.threshold);
  renderDrift(data.drift, data.shadow);
}

// PSI bars on a scale up to 0.5 (or the highest value), the alert's 0.2 marked.
function renderDrift(drift, shadow) {
  const box = document.getElementById("drift");
  box.replaceChildren();
  if (!drift || !drift.watched) {
    box.textContent = "not watched: the champion has no training reference";
  } else if (Object.keys(drift.psi).length === 0) {
    box.textContent = `${fmtNumber(drift.window_transactions)} of the ${fmtNumber(drift.min_transactions)} ` +
      "transactions the window needs";
  } else {
    const top = Math.max(0.5, ...Object.values(drift.psi));
    for (const [name, value] of Object.entries(drift.psi)) {
      const row = document.createElement("div");
      row.className = `drift-row${value > 0.2 ? " high" : ""}`;
      const label = document.createElement("span");
      label.textContent = name;
      const bar = document.createElement("span");
      bar.className = "drift-bar";
      bar.style.setProperty("--psi", `${(100 * value) / top}%`);
      bar.style.setProperty("--line", `${(100 * 0.2) / top}%`);
      const figure = document.createElement("span");
      figure.textContent = fmtNumber(value, 3);
      row.append(label, bar, figure);
      box.append(row);
    }
  }
  setText("drift-window", drift ? `PSI against the champion's training data, last ${fmtNumber(drift.window_s / 60)} ` +
    `min, ${fmtNumber(drift.window_transactions)} transactions` : "PSI against the champion's training data");
  setText("shadow", shadow && shadow.version ? `v${shadow.version}: ${fmtNumber(shadow.shadowed)} transactions ` +
    `shadowed, agreement ${shadow.agreement === null ? "–" : fmtPct(shadow.agreement)}` : "none");
}

function setStatus() {
  const status = document.getElementById("status");
  const fresh = Date.now() - lastOk < STALE_MS;
  status.className = `status ${fresh ? "live" : "stale"}`;
  status.textContent = fresh ? "live" : lastOk ? `no answer for ${Math.round((Date.now() - lastOk) / 1000)} s` : "connecting…";
}

async function poll() {
  try {
    const response = await fetch("/dashboard/data", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
    lastOk = Date.now();
  } catch (error) {
    console.warn("dashboard: cannot read /dashboard/data:", error);
  } finally {
    setStatus();
    setTimeout(poll, POLL_MS);
  }
}

poll();
