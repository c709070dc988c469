// Pulseboard dashboard: one live chart per series. On open each chart backfills its range from
// the history API, then follows its channel (live.js), reloading history after a reset.
"use strict";
(() => {
  const PREFERRED = ["host.cpu", "host.memory"];
  const RANGES = { "15m": 15 * 60e3, "1h": 3600e3, "24h": 24 * 3600e3, "7d": 7 * 24 * 3600e3 };
  const charts = new Map(); // series key -> chart
  let range = { live: true, span: RANGES["15m"] };
  let live = null;

  const keyOf = (name, tags) => name + JSON.stringify(Object.keys(tags || {}).sort().map((k) => [k, tags[k]]));
  const channelOf = (name) => "metrics:" + name;

  async function api(path) {
    const response = await fetch(path, { credentials: "same-origin" });
    if (response.status === 401) { location.href = "/"; throw new Error("logged out"); }
    if (!response.ok) throw new Error(path + ": " + response.status);
    return response.json();
  }

  function currentRange() {
    if (range.live) { const to = Date.now(); return { from: to - range.span, to }; }
    return { from: range.from, to: range.to };
  }

  function createChart(series) {
    const section = document.createElement("section");
    section.className = "chart";
    section.dataset.series = series.name;
    const title = document.createElement("h2");
    const label = document.createElement("span");
    const tags = Object.entries(series.tags || {}).map(([k, v]) => k + "=" + v).join(",");
    label.textContent = series.name + (tags ? " {" + tags + "}" : "");
    const value = document.createElement("span");
    value.className = "value";
    title.append(label, value);
    const canvas = document.createElement("canvas");
    section.append(title, canvas);
    const chart = { name: series.name, tags: series.tags || {}, section, canvas, value, points: [], banded: false };
    charts.set(keyOf(series.name, series.tags), chart);
    return chart;
  }

  function placeCharts() {
    const container = document.getElementById("charts");
    const rank = (c) => { const i = PREFERRED.indexOf(c.name); return i < 0 ? PREFERRED.length : i; };
    [...charts.values()]
      .sort((a, b) => rank(a) - rank(b) || a.name.localeCompare(b.name))
      .forEach((c) => container.append(c.section));
  }

  async function loadHistory(chart) {
    const { from, to } = currentRange();
    const query = new URLSearchParams({
      name: chart.name,
      from: new Date(from).toISOString(),
      to: new Date(to).toISOString(),
      maxPoints: String(Math.max(100, Math.min(2000, chart.canvas.clientWidth | 0))),
    });
    const tags = Object.entries(chart.tags).map(([k, v]) => k + "=" + v).join(",");
    if (tags) query.set("tags", tags);
    // The answer holds every series of the name whose tags include the chart's: take its own.
    const answer = await api("/api/v1/metrics?" + query);
    const history = answer.series.find((s) => keyOf(chart.name, s.tags) === keyOf(chart.name, chart.tags));
    if (!history) { chart.points = []; draw(chart); return; }
    chart.banded = history.downsampled;
    chart.points = history.downsampled
      ? history.buckets.map((b) => ({ t: Date.parse(b.timestamp) + history.bucketSeconds * 500, v: b.avg, min: b.min, max: b.max }))
      : history.points.map((p) => ({ t: Date.parse(p.timestamp), v: p.value }));
    draw(chart);
  }

  async function refreshSeries() {
    const { series } = await api("/api/v1/series");
    const added = series.filter((s) => !charts.has(keyOf(s.name, s.tags))).map(createChart);
    if (added.length === 0) return;
    placeCharts();
    for (const chart of added) {
      live.subscribe(channelOf(chart.name));
      await loadHistory(chart);
    }
  }

  function receive(message) {
    if (range.live) message.data.points.forEach(append);
  }

  // A chart backfills itself when created; after a reset or a server restart it reloads.
  function reload(channel, reason) {
    if (reason === "first") return;
    charts.forEach((chart) => { if (channelOf(chart.name) === channel) loadHistory(chart); });
  }

  function append(point) {
    const chart = charts.get(keyOf(point.name, point.tags));
    if (!chart) { refreshSeries(); return; }
    const t = Date.parse(point.timestamp);
    // Keep time order: with several instances a point committed elsewhere can arrive a little
    // after a newer local one. A point at an existing time is already in the backfilled history.
    let at = chart.points.length;
    while (at > 0 && chart.points[at - 1].t > t) at--;
    if (at > 0 && chart.points[at - 1].t === t) return;
    chart.points.splice(at, 0, { t, v: point.value });
    const from = Date.now() - range.span;
    while (chart.points.length > 1 && chart.points[0].t < from) chart.points.shift();
    draw(chart);
  }

  function format(value) {
    const abs = Math.abs(value);
    if (abs >= 1e9) return (value / 1e9).toFixed(1) + "G";
    if (abs >= 1e6) return (value / 1e6).toFixed(1) + "M";
    if (abs >= 1e4) return (value / 1e3).toFixed(1) + "k";
    return abs >= 100 ? value.toFixed(0) : value.toFixed(2);
  }

  function draw(chart) {
    const { canvas, points } = chart;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.clientWidth, height = canvas.clientHeight;
    canvas.width = width * ratio;
    canvas.height = height * ratio;
    const ctx = canvas.getContext("2d");
    ctx.scale(ratio, ratio);
    ctx.clearRect(0, 0, width, height);
    chart.section.dataset.points = String(points.length);
    chart.section.dataset.last = points.length ? String(points[points.length - 1].t) : "";
    chart.value.textContent = points.length ? format(points[points.length - 1].v) : "no data";
    if (points.length === 0) return;
    const { from, to } = currentRange();
    let low = Infinity, high = -Infinity;
    for (const p of points) { low = Math.min(low, p.min ?? p.v); high = Math.max(high, p.max ?? p.v); }
    if (low === high) { low -= 1; high += 1; }
    const pad = { left: 44, right: 6, top: 6, bottom: 16 };
    const x = (t) => pad.left + ((t - from) / (to - from)) * (width - pad.left - pad.right);
    const y = (v) => pad.top + (1 - (v - low) / (high - low)) * (height - pad.top - pad.bottom);
    ctx.fillStyle = "#8a96a3";
    ctx.font = "11px system-ui";
    ctx.fillText(format(high), 2, pad.top + 8);
    ctx.fillText(format(low), 2, height - pad.bottom);
    ctx.fillText(new Date(from).toLocaleTimeString(), pad.left, height - 2);
    const end = new Date(to).toLocaleTimeString();
    ctx.fillText(end, width - pad.right - ctx.measureText(end).width, height - 2);
    if (chart.banded) {
      ctx.fillStyle = "rgba(79,179,255,0.18)";
      ctx.beginPath();
      points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.max ?? p.v)) : ctx.moveTo(x(p.t), y(p.max ?? p.v))));
      for (let i = points.length - 1; i >= 0; i--) ctx.lineTo(x(points[i].t), y(points[i].min ?? points[i].v));
      ctx.fill();
    }
    ctx.strokeStyle = "#4fb3ff";
    ctx.lineWidth = 1.5;
    ctx.beginPath();
    points.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p.v)) : ctx.moveTo(x(p.t), y(p.v))));
    ctx.stroke();
  }

  function selectRange(button) {
    document.querySelectorAll("#ranges button").forEach((b) => b.classList.toggle("active", b === button));
    const name = button.dataset.range;
    if (name === "custom") {
      const from = Date.parse(document.getElementById("custom-from").value);
      const to = Date.parse(document.getElementById("custom-to").value);
      if (!(from < to)) { alert("Choose a start before the end."); return; }
      range = { live: false, from, to };
    } else {
      range = { live: true, span: RANGES[name] };
    }
    charts.forEach(loadHistory);
  }

  document.addEventListener("DOMContentLoaded", () => {
    if (!document.getElementById("charts")) return;
    document.querySelectorAll("#ranges button").forEach((b) => b.addEventListener("click", () => selectRange(b)));
    live = pulseboardLive({ onData: receive, onReload: reload });
    // New series are looked for every 15 s; until there is one, every second (a server that has
    // just started commits its first host sample a second after it starts).
    const poll = () => refreshSeries().catch((error) => console.warn(error)).finally(() => setTimeout(poll, charts.size ? 15000 : 1000));
    poll();
    setInterval(() => { if (range.live) charts.forEach(draw); }, 1000);
    window.addEventListener("resize", () => charts.forEach(draw));
  });
})();
