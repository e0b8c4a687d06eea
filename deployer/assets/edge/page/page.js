// The status page's script: reads the edge's JSON (lua/deployer/page.lua) every 10 s and draws
// the last hour as inline SVG, with a mark at each release, switch and auto-rollback of the
// history. No library, no build step. Text from the edge goes in with textContent only.
"use strict";

const SVG = "http://www.w3.org/2000/svg";
const HOUR = 3600;
const W = 760, H = 170, LEFT = 52, RIGHT = 8, TOP = 10, BOTTOM = 22;
const PALETTE = ["#1f6feb", "#d4732a", "#2da44e", "#8250df", "#cf222e", "#6e7781", "#0a7ea4", "#9a6700"];
const CHARTS = [
  { id: "chart-rate", column: 1, scale: 1, unit: "" },
  { id: "chart-errors", column: 2, scale: 100, unit: "%" },
  { id: "chart-p99", column: 3, scale: 1, unit: "" },
];
const MARKS = { release: "#2da44e", switch: "#1f6feb", "auto-rollback": "#cf222e" };

function el(name, attrs, text) {
  const node = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

function cell(row, text, cls) {
  const td = row.insertCell();
  td.textContent = text === undefined || text === null ? "" : String(text);
  if (cls) td.className = cls;
  return td;
}

// The history's time ("2026-12-07T11:40:00+0000") in seconds.
function seconds(text) {
  const t = Date.parse(String(text || "").replace(/([+-]\d\d)(\d\d)$/, "$1:$2"));
  return Number.isNaN(t) ? null : t / 1000;
}

function clock(t) {
  return new Date(t * 1000).toISOString().slice(11, 19);
}

// A time of the history or of a dump, in UTC as the rest of the page: "2026-12-07 11:40:00".
function when(text) {
  const t = seconds(text);
  return t === null ? text : new Date(t * 1000).toISOString().slice(0, 19).replace("T", " ");
}

function parsed(lines) {
  const out = [];
  for (const line of lines || []) {
    try {
      const value = JSON.parse(line);
      if (value && typeof value === "object") out.push(value);
    } catch (e) { /* a torn line */ }
  }
  return out;
}

// The history entries that are marks: a release that went live, a switch, an auto-rollback.
function marks(history) {
  const out = [];
  for (const h of history) {
    const kind = h.action;
    const done = kind === "auto-rollback" ? h.outcome === "rolled-back" : h.outcome === "ok";
    const t = seconds(h.time);
    if (MARKS[kind] && done && t !== null) {
      out.push({ kind, t, text: kind === "switch" ? "switch to " + (h.colour || "") : kind + " " + (h.version || "") });
    }
  }
  return out;
}

// The span drawn: the last hour, or less while the edge has less (at least 2 minutes).
function span(series, events, now) {
  let oldest = now - 120;
  for (const rows of Object.values(series)) for (const r of rows) oldest = Math.min(oldest, r[0] - 10);
  for (const ev of events) oldest = Math.min(oldest, ev.t - 30);
  return Math.max(now - HOUR, oldest);
}

function draw(chart, series, events, now, colours) {
  const svg = document.getElementById(chart.id);
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const start = span(series, events, now);
  const x = (t) => +(LEFT + ((t - start) / (now - start)) * (W - LEFT - RIGHT)).toFixed(1);
  let max = 0;
  for (const rows of Object.values(series)) {
    for (const r of rows) if (r[chart.column] !== null) max = Math.max(max, r[chart.column] * chart.scale);
  }
  max = max > 0 ? max * 1.15 : 1;
  const y = (v) => +(TOP + (1 - v / max) * (H - TOP - BOTTOM)).toFixed(1);
  for (const f of [0, 0.5, 1]) {
    svg.appendChild(el("line", { x1: LEFT, x2: W - RIGHT, y1: y(max * f), y2: y(max * f), stroke: "#e2e2e2" }));
    const label = f === 0 ? "0" : max * f >= 100 ? (max * f).toFixed(0) : (max * f).toPrecision(2);
    svg.appendChild(el("text", { x: LEFT - 4, y: y(max * f) + 4, "text-anchor": "end", "font-size": 10, fill: "#666" }, label + chart.unit));
  }
  for (let i = 0; i <= 4; i++) {
    const t = start + ((now - start) * i) / 4;
    const anchor = i === 0 ? "start" : i === 4 ? "end" : "middle";
    svg.appendChild(el("text", { x: x(t), y: H - 6, "text-anchor": anchor, "font-size": 10, fill: "#666" }, clock(t)));
  }
  let shown = 0;
  for (const ev of events) {
    if (ev.t < start || ev.t > now + 60) continue;
    const row = TOP + 9 + (shown++ % 3) * 11; // marks close together keep their labels apart
    const g = el("g", { class: "mark", "data-kind": ev.kind });
    g.appendChild(el("line", { x1: x(ev.t), x2: x(ev.t), y1: TOP, y2: H - BOTTOM, stroke: MARKS[ev.kind], "stroke-dasharray": "4 3" }));
    const right = x(ev.t) > W - 120; // a label near the right edge goes to the mark's left
    g.appendChild(el("text", { x: x(ev.t) + (right ? -3 : 3), y: row, "text-anchor": right ? "end" : "start",
      "font-size": 10, fill: MARKS[ev.kind] }, ev.text));
    svg.appendChild(g);
  }
  for (const [name, rows] of Object.entries(series)) {
    let d = "", last = null;
    for (const r of rows) {
      const v = r[chart.column];
      if (v === null || r[0] < start) { last = null; continue; }
      const gap = last === null || r[0] - last > 25;
      d += (gap ? "M" : "L") + x(r[0]) + "," + y(v * chart.scale);
      last = r[0];
    }
    if (d) svg.appendChild(el("path", { class: "series", "data-service": name, d, fill: "none", stroke: colours[name], "stroke-width": 1.6 }));
  }
}

function table(id, rows, fill) {
  const body = document.querySelector("#" + id + " tbody");
  while (body.firstChild) body.removeChild(body.firstChild);
  for (const r of rows) fill(body.insertRow(), r);
}

function render(series, status) {
  const names = Object.keys(series.services).sort();
  const colours = {};
  names.forEach((n, i) => { colours[n] = PALETTE[i % PALETTE.length]; });
  const legend = document.getElementById("legend");
  legend.textContent = "";
  for (const n of names) {
    const s = document.createElement("span");
    s.textContent = "\u25A0 " + n;
    s.style.color = colours[n];
    legend.appendChild(s);
  }
  const history = parsed(status.history);
  const events = marks(history);
  for (const chart of CHARTS) draw(chart, series.services, events, series.now, colours);
  const roles = [];
  for (const [colour, c] of Object.entries(status.colours)) {
    const role = colour === status.live ? "live" : colour === status.standby ? "standby" : "-";
    roles.push({ colour, role, version: c.version, release: c.release });
  }
  roles.sort((a, b) => (a.role === "live" ? -1 : b.role === "live" ? 1 : 0));
  table("colours", roles, (row, c) => {
    cell(row, c.colour); cell(row, c.role, c.role === "live" ? "live" : ""); cell(row, c.version); cell(row, c.release);
  });
  document.getElementById("maintenance").hidden = !status.maintenance;
  table("dumps", parsed(status.dumps).reverse().slice(0, 10), (row, d) => {
    cell(row, when(d.created)); cell(row, d.name); cell(row, d.label); cell(row, d.size_text);
    const checked = d.checked ? " (" + (d.check_kind || "check") + " check, " + when(d.checked) + ")" : "";
    cell(row, d.problem ? d.state + ": " + d.problem : d.state + checked,
      d.state === "verified" ? "ok" : d.state === "damaged" ? "bad" : "");
  });
  table("history", history.reverse().slice(0, 20), (row, h) => {
    cell(row, when(h.time)); cell(row, h.action);
    cell(row, h.outcome, h.outcome === "ok" ? "ok" : h.outcome ? "bad" : "");
    cell(row, h.version); cell(row, h.colour);
    cell(row, h.outcome !== "ok" && h.reason ? (h.step ? h.step + ": " : "") + h.reason : h.seconds ? h.seconds + " s" : "");
  });
  const points = series.points;
  document.getElementById("updated").textContent =
    "edge time " + new Date(series.now * 1000).toISOString().slice(0, 19).replace("T", " ") + " UTC; " +
    points + " of " + HOUR / series.interval + " points (one every " + series.interval + " s)";
  document.body.dataset.loaded = "1";
  document.body.dataset.points = String(points);
}

async function load() {
  try {
    const [series, status] = await Promise.all(
      ["series.json", "status.json"].map((u) => fetch(u, { cache: "no-store" }).then((r) => {
        if (!r.ok) throw new Error(u + ": " + r.status);
        return r.json();
      })));
    render(series, status);
  } catch (e) {
    document.getElementById("updated").textContent = "cannot read the edge: " + e.message;
  }
  setTimeout(load, 10000);
}

load();
