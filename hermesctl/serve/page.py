"""The fleet page: a summary line (why a container is unhealthy, which is over its budget, under
it), the `hermesctl ps` table grouped by container (node, health and budget in each group's
header; each profile's spend today and budget), live over server-sent events and filterable by a
target glob; per profile a chart of the day's spend and sessions with time and value axes, drawn
from the same figures as the table (/api/overview); recent changes in words; a gateway's log on
click, followed, the newest line in view unless the reader scrolled up. The layout never overlaps
from 1024 px up: the table scrolls inside its column, and below 1400 px the side column goes
under. Everything from containers is set as text (textContent, SVG text nodes), never as markup.

The page itself is static and holds nothing secret. It takes the token from its address's
fragment (`/#token=…`, which the browser never sends), keeps it in sessionStorage (this tab, this
origin: scheme, host and port) and sends it as an Authorization header on each request, so no
cookie exists that the browser could hand to another port of the same host. The server checks
the token on every request anyway."""

PAGE = r"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>hermesctl · fleet</title>
<style>
 body { font: 13px/1.4 system-ui, sans-serif; margin: 1.2em; color: #222; }
 h1 { font-size: 1.2em; margin: 0 0 .6em; } h1 small { color: #888; font-weight: normal; }
 #layout { display: grid; grid-template-columns: minmax(0, 1fr) minmax(20em, 26em); gap: 1.2em; }
 @media (max-width: 1399px) { #layout { grid-template-columns: minmax(0, 1fr); } }
 #layout > div { min-width: 0; }
 #table-wrap { overflow-x: auto; }
 #summary { display: flex; flex-wrap: wrap; gap: .4em 1.2em; margin: 0 0 .8em; padding: .5em .8em;
            background: #f6f7f9; border-radius: 6px; }
 #summary b { font-variant-numeric: tabular-nums; } #summary .bad { color: #b3261e; }
 tr.group td { background: #f1f3f6; font-weight: 600; padding-top: 6px; white-space: normal; overflow-wrap: anywhere; }
 tr.group .health { font-weight: normal; color: #555; margin-left: .8em; }
 tr.group .unhealthy, tr.group .stopped, .over { color: #b3261e; }
 .over { font-weight: 600; }
 #alerts { margin: -.4em 0 .8em; } #alerts div { color: #b3261e; overflow-wrap: anywhere; }
 td.container { width: 1em; padding: 0; font-size: 0; } /* the group header names it */
 #charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(22em, 100%), 1fr)); gap: .2em 1.2em; }
 #charts .chart { min-width: 0; border-bottom: 1px solid #f0f0f0; padding: 4px 0; }
 #charts .name { font-weight: 600; overflow-wrap: anywhere; }
 #charts .figures { font-variant-numeric: tabular-nums; overflow-wrap: anywhere; }
 #charts svg { display: block; overflow: visible; }
 #charts svg text { font: 11px system-ui, sans-serif; fill: #555; font-variant-numeric: tabular-nums; }
 .legend { color: #888; font-size: 11px; font-weight: normal; margin: -.4em 0 .4em; }
 table { border-collapse: collapse; width: 100%; }
 th, td { text-align: left; padding: 3px 6px; border-bottom: 1px solid #eee; white-space: nowrap; }
 td.budget { white-space: normal; }
 th { font-weight: 600; background: #fafafa; }
 tr.gateway { cursor: pointer; } tr.gateway:hover { background: #f4f8ff; }
 .up { color: #0a7d2c; } .down, .parked, .crash-loop, .orphaned, .platforms-fatal, .timeout, .error { color: #b3261e; font-weight: 600; }
 #events { font-size: 12px; max-height: 50vh; overflow: auto; }
 #events time { color: #888; font-variant-numeric: tabular-nums; margin-right: .5em; }
 #events div { border-bottom: 1px solid #f0f0f0; padding: 2px 0; }
 #log { font-family: ui-monospace, monospace; font-size: 12px; background: #111; color: #ddd;
        padding: .6em; max-height: 40vh; overflow: auto; white-space: pre-wrap; overflow-wrap: anywhere; }
 #log-state { color: #888; font-weight: normal; }
 button { font-size: 12px; margin-right: 3px; }
 #status { color: #888; }
 #unanswered div { color: #b3261e; }
</style></head>
<body>
<h1>Hermes fleet <small id="status">connecting…</small></h1>
<div id="summary">loading…</div>
<div id="alerts"></div>
<div id="unanswered"></div>
<p><label>Filter <input id="filter" placeholder="CONTAINER[:PROFILE] glob, e.g. web-*:coder" size="40"></label>
 <span id="mode"></span></p>
<div id="layout">
 <div><div id="table-wrap"><table id="fleet"><thead><tr>
  <th></th><th>PROFILE</th><th>STATE</th><th>PID</th><th>UPTIME</th><th>WANTED</th>
  <th>GATEWAY</th><th>DESIRED</th><th>PLATFORMS</th><th title="estimated cost (sessions) of sessions started today, UTC">TODAY</th><th title="the fleet file's daily budget">BUDGET</th><th id="actions-head"></th></tr></thead>
  <tbody></tbody></table></div>
  <h2 style="font-size:1em">Log <small id="log-target"></small> <small id="log-state"></small></h2><div id="log">click a gateway</div></div>
 <div><h2 style="font-size:1em;margin-top:0">Spend and sessions today (UTC)
  </h2>
  <div class="legend"><span style="color:#1f5fbf">━ spend, $ (left axis)</span> · <span style="color:#777">━ sessions started (right axis)</span>
   · time in UTC · the TODAY column's figures, as serve saw them through the day (shaded: before serve was watching)</div>
  <div id="charts">no usage yet</div>
  <h2 style="font-size:1em">Recent changes</h2><div id="events"></div></div>
</div>
<script>
const TOKEN = (() => {
  const m = location.hash.match(/^#token=([^&#]+)$/);
  let token = null;
  try { token = m && decodeURIComponent(m[1]); } catch (e) { /* malformed: ignored */ }
  if (token) {
    sessionStorage.setItem("__SESSION_KEY__", token);
    history.replaceState(null, "", location.pathname + location.search);  // out of the address bar
  }
  return sessionStorage.getItem("__SESSION_KEY__");
})();
// The address pasted into a tab already on this page only changes its fragment: start over.
window.addEventListener("hashchange", () => { if (location.hash.startsWith("#token=")) location.reload(); });
let CAN_ACT = false;
let rows = [], events = [];
const $ = (s) => document.querySelector(s);
function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {}, TOKEN ? {"Authorization": "Bearer " + TOKEN} : {});
  return fetch(path, Object.assign({}, options, {headers, credentials: "omit", cache: "no-store"}));
}
function setMode(ok) {
  CAN_ACT = ok;
  $("#mode").textContent = ok ? "" : (TOKEN ? "the token was refused: open the address `hermesctl serve` printed"
                                            : "open the address `hermesctl serve` printed (…/#token=…)");
  $("#actions-head").textContent = ok ? "ACTIONS" : "";
}
setMode(false);
// Without a (valid) token nothing will load: say so where "loading…" stood, not in small print.
function needToken(refused) {
  const sum = $("#summary");
  sum.textContent = (refused ? "This server refused the token. " : "This page needs the server's token. ") +
    "Open the address `hermesctl serve` printed (…/#token=…), or run `hermesctl serve` again for a new one.";
  sum.className = "bad";
}

function globToRegExp(glob) {
  return new RegExp("^" + glob.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, ".*").replace(/\?/g, ".") + "$");
}
function selected(r) {
  const f = $("#filter").value.trim();
  if (!f) return true;
  const [c, p] = f.split(":");
  return globToRegExp(c || "*").test(r.container) && (p === undefined || globToRegExp(p || "*").test(r.profile || ""));
}
function age(s) {
  if (s == null) return "-";
  if (s < 60) return s + "s"; if (s < 3600) return Math.floor(s / 60) + "m";
  return Math.floor(s / 3600) + "h" + Math.floor((s % 3600) / 60) + "m";
}
function cell(tr, text, cls) { const td = document.createElement("td"); td.textContent = text == null ? "-" : text; if (cls) td.className = cls; tr.appendChild(td); return td; }
let overview = null;
function money(x) { return "$" + (x || 0).toFixed(2); }
function plural(n, one, many) { return n + " " + (n === 1 ? one : many); }
function groupOf(container) { return overview && overview.groups.find(g => g.container === container); }
// own keys only: a profile named "constructor" is a profile, not Object's
function usageOf(container, profile) { const g = groupOf(container); return g && Object.hasOwn(g.profiles, profile) ? g.profiles[profile] : null; }
function budgetText(daily) {  // short: it sits in a table column
  if (daily == null) return null;
  const m = daily >= 1000 ? "$" + +(daily / 1000).toFixed(1) + "k" : Number.isInteger(daily) ? "$" + daily : money(daily);
  return m + "/day";
}
function groupRow(body, name, list) {
  const tr = document.createElement("tr");
  tr.className = "group"; tr.dataset.container = name;
  const td = cell(tr, name); td.colSpan = 12;
  const g = groupOf(name);
  const first = list[0];
  const bits = [];
  if (first && first.endpoint && first.endpoint !== "default") bits.push("on " + first.endpoint);
  const health = g ? (!g.running ? "stopped" : (g.health || "no health check")) : null;
  if (health) bits.push(health + (g.health_reason ? ": " + g.health_reason : ""));
  if (g) bits.push(money(g.spend_today_usd) + " today" + (g.budget_daily_usd != null ? " of " + budgetText(g.budget_daily_usd) : ""));
  const span = document.createElement("span");
  span.className = "health " + (health || ""); span.textContent = bits.join(" · ");
  td.appendChild(span);
  if (g && g.over_budget) {
    const mark = document.createElement("span");
    mark.className = "over budget-mark"; mark.textContent = " ⚠ over budget";
    td.appendChild(mark);
  }
  body.appendChild(tr);
}
function render() {
  const body = $("#fleet tbody");
  body.replaceChildren();
  const byContainer = new Map();
  for (const r of rows.filter(selected)) {
    if (!byContainer.has(r.container)) byContainer.set(r.container, []);
    byContainer.get(r.container).push(r);
  }
  for (const [name, list] of byContainer) {
    groupRow(body, name, list);
    for (const r of list) {
      const tr = document.createElement("tr");
      tr.dataset.target = r.target;
      if (r.profile) { tr.className = "gateway"; tr.onclick = () => showLog(r.target); }
      cell(tr, r.container, "container"); cell(tr, r.profile); cell(tr, r.state, r.state);
      cell(tr, r.pid); cell(tr, age(r.uptime_s)); cell(tr, r.wanted); cell(tr, r.gateway_state);
      cell(tr, r.desired_state);
      cell(tr, Object.entries(r.platforms || {}).map(([k, v]) => k + ":" + ((v && v.state) || "?")).join(" ") || "-");
      const u = r.profile ? usageOf(r.container, r.profile) : null;
      // a profile whose usage cannot be read says so; "missing": no session database yet
      cell(tr, !u || u.error === "missing" ? null : u.error ? "error: " + u.error
               : money(u.spend_today_usd) + " (" + u.sessions_today + ")", "today");
      const budget = u ? budgetText(u.budget_daily_usd) : null;
      cell(tr, budget && u.over_budget ? "⚠ over " + budget : budget, "budget" + (u && u.over_budget ? " over" : ""));
      const actions = cell(tr, "");
      if (CAN_ACT && r.profile) {
        // What can be done to it now: a gateway that runs, or that s6 keeps trying, can be
        // stopped or restarted; one that is stopped, parked or has no slot yet can be started.
        const verbs = r.state !== "no slot" && (r.state === "up" || r.wanted === "up") ? ["stop", "restart"] : ["start"];
        for (const verb of verbs) {
          const b = document.createElement("button");
          b.textContent = verb; b.dataset.verb = verb;
          b.onclick = (ev) => { ev.stopPropagation(); act(verb, r.target, b); };
          actions.appendChild(b);
        }
      }
      body.appendChild(tr);
    }
  }
  renderOverview();
}
// --- the chart: one per profile, built as SVG elements (no markup from data) ---------------
const SVG = "http://www.w3.org/2000/svg";
function svgEl(parent, name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  parent.appendChild(e);
  return e;
}
function niceMax(x) {  // 1, 2, 2.5 or 5 times a power of ten, at least x (and above 0)
  if (!(x > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(x)));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= x - 1e-12) return m * p;
  return 10 * p;
}
function axisMoney(x, max) {
  if (max >= 1000) return "$" + (x / 1000).toFixed(x % 1000 ? 1 : 0) + "k";
  if (max >= 10) return "$" + (Number.isInteger(x) ? x : x.toFixed(1));
  return "$" + x.toFixed(2);
}
function hhmm(seconds) { const h = Math.floor(seconds / 3600), m = Math.floor((seconds % 3600) / 60);
  return String(h).padStart(2, "0") + ":" + String(m).padStart(2, "0"); }
function drawChart(holder, p, dayStart, now) {
  const w = Math.max(200, Math.floor(holder.clientWidth)), h = 120;
  const left = 46, right = 36, top = 8, bottom = 20;
  const pw = w - left - right, ph = h - top - bottom;
  const svg = svgEl(holder, "svg", {width: w, height: h, viewBox: `0 0 ${w} ${h}`, role: "img",
    "aria-label": "spend and sessions today"});
  const pts = p.points.filter(q => q[0] >= dayStart);
  const usdMax = niceMax(Math.max(...pts.map(q => q[1]), 0));
  const nMax = Math.max(1, Math.ceil(niceMax(Math.max(...pts.map(q => q[2]), 0))));
  const X = (t) => left + Math.min(1, Math.max(0, (t - dayStart) / 86400)) * pw;
  const Y = (v, max) => top + ph - (v / max) * ph;
  svgEl(svg, "rect", {x: left, y: top, width: pw, height: ph, fill: "#fafbfc"});
  // value axes: $ on the left, sessions on the right, at 0, half and the top
  for (const f of [0, 0.5, 1]) {
    const y = Y(f * usdMax, usdMax);
    svgEl(svg, "line", {x1: left, x2: left + pw, y1: y, y2: y, stroke: f ? "#e6e8eb" : "#999"});
    svgEl(svg, "text", {x: left - 4, y: y + 4, "text-anchor": "end", class: "y-usd"}, axisMoney(f * usdMax, usdMax));
    const n = f * nMax;
    if (Number.isInteger(n)) svgEl(svg, "text", {x: left + pw + 4, y: y + 4, "text-anchor": "start", class: "y-sessions"}, String(n));
  }
  // time axis: the UTC day, ticks every 6 hours (12 when narrow)
  const step = pw / 4 >= 44 ? 6 : 12;
  for (let hr = 0; hr <= 24; hr += step) {
    const x = X(dayStart + hr * 3600);
    svgEl(svg, "line", {x1: x, x2: x, y1: top + ph, y2: top + ph + 3, stroke: "#999"});
    svgEl(svg, "text", {x: x, y: h - 4, "text-anchor": hr === 0 ? "start" : hr === 24 ? "end" : "middle", class: "x-time"},
      hr === 24 ? "24:00" : hhmm(hr * 3600));
  }
  // before serve's first reading the day's course is not known: shaded, not drawn
  if (pts.length && pts[0][0] > dayStart + 60)
    svgEl(svg, "rect", {x: left, y: top, width: X(pts[0][0]) - left, height: ph, fill: "#eceef1", class: "unseen"});
  svgEl(svg, "line", {x1: X(now), x2: X(now), y1: top, y2: top + ph, stroke: "#c8ccd2", "stroke-dasharray": "2 2"});
  // each series steps at each reading, and holds until now
  const series = (pick, max) => {
    const out = [];
    pts.forEach((q, i) => { if (i) out.push([X(q[0]), Y(pick(pts[i - 1]), max)]); out.push([X(q[0]), Y(pick(q), max)]); });
    return out.map(([x, y]) => x.toFixed(1) + "," + y.toFixed(1)).join(" ");
  };
  if (pts.length) {
    svgEl(svg, "polyline", {fill: "none", stroke: "#888", "stroke-width": 1.5, points: series(q => q[2], nMax), class: "sessions"});
    svgEl(svg, "polyline", {fill: "none", stroke: "#1f5fbf", "stroke-width": 2, points: series(q => q[1], usdMax), class: "spend"});
    const last = pts[pts.length - 1];  // now: the figures printed above the chart
    svgEl(svg, "circle", {cx: X(last[0]), cy: Y(last[2], nMax), r: 2.5, fill: "#888"});
    svgEl(svg, "circle", {cx: X(last[0]), cy: Y(last[1], usdMax), r: 3, fill: "#1f5fbf"});
  }
  return svg;
}
function renderOverview() {
  if (!overview) return;
  const s = overview.summary;
  const parts = [
    ["up", s.up, "up", "up"], ["down", s.down, "down", "down", s.down > 0],
    ["crash-looping", s.crash_looping, "crash-looping", "crash-looping", s.crash_looping > 0],
    ["parked", s.parked, "parked", "parked", s.parked > 0],
    ["containers unhealthy", s.containers_unhealthy, "container unhealthy", "containers unhealthy", s.containers_unhealthy > 0],
    ["endpoints unreachable", s.endpoints_unreachable.length, "endpoint unreachable", "endpoints unreachable",
     s.endpoints_unreachable.length > 0]];
  const sum = $("#summary");
  sum.replaceChildren();
  const lead = document.createElement("span");
  lead.textContent = plural(s.gateways, "gateway", "gateways") + " in " + plural(s.containers, "container", "containers") + ":";
  sum.appendChild(lead);
  for (const [key, n, one, many, bad] of parts) {
    const span = document.createElement("span");
    span.dataset.key = key;
    const b = document.createElement("b"); b.textContent = n; if (bad) b.className = "bad";
    span.append(b, " " + (n === 1 ? one : many));
    sum.appendChild(span);
  }
  const spend = document.createElement("span");
  spend.dataset.key = "spend";
  const b = document.createElement("b"); b.textContent = money(s.spend_today_usd);
  spend.append(b, " spent today (" + plural(s.sessions_today, "session", "sessions") + ")");
  sum.appendChild(spend);
  // Why: each unhealthy container with Docker's reason, each container over its budget.
  const alerts = $("#alerts");
  alerts.replaceChildren();
  for (const u of s.unhealthy || []) {
    const d = document.createElement("div");
    d.className = "unhealthy-reason"; d.dataset.container = u.container;
    d.textContent = "⚠ " + u.container + " is unhealthy: " + (u.reason || "reason not known yet");
    alerts.appendChild(d);
  }
  for (const g of overview.groups.filter(g => g.over_budget)) {
    const d = document.createElement("div");
    d.className = "over-budget"; d.dataset.container = g.container;
    d.textContent = "⚠ " + g.container + " is over its budget: " + money(g.spend_today_usd) + " spent today of " + budgetText(g.budget_daily_usd);
    alerts.appendChild(d);
  }
  const charts = $("#charts");
  const shown = [];
  for (const g of overview.groups) for (const [name, p] of Object.entries(g.profiles))
    if (p.points.length && !p.error && selected({container: g.container, profile: name})) shown.push([g, name, p]);
  if (!shown.length) { charts.textContent = "no usage yet"; }
  else {
    charts.replaceChildren();
    for (const [g, profile, p] of shown) {
      const row = document.createElement("div");
      row.className = "chart"; row.dataset.target = g.container + ":" + profile;
      const name = document.createElement("div");
      name.className = "name"; name.textContent = g.container + ":" + profile;
      const figures = document.createElement("div");
      figures.className = "figures";
      const first = p.points[0][0];
      figures.textContent = money(p.spend_today_usd) + " today · " + plural(p.sessions_today, "session", "sessions") +
        (p.budget_daily_usd != null ? " · budget " + budgetText(p.budget_daily_usd) : "") +
        (first > overview.day_start + 120 ? " · seen since " + hhmm(first - overview.day_start) + " UTC" : "");
      if (p.over_budget) figures.classList.add("over");
      const pic = document.createElement("div");
      row.append(name, figures, pic);
      charts.appendChild(row);
      drawChart(pic, p, overview.day_start, overview.now);
    }
  }
  const ev = $("#events");
  ev.replaceChildren();
  const changes = overview.changes.filter(e => { const [c, p] = String(e.target).split(":"); return selected({container: c, profile: p}); });
  for (const e of changes.slice(0, 100)) {
    const d = document.createElement("div");
    const t = document.createElement("time"); t.textContent = new Date(e.time * 1000).toLocaleTimeString();
    d.append(t, e.text);
    ev.appendChild(d);
  }
}
window.addEventListener("resize", () => renderOverview());
async function loadOverview() {
  try {
    const res = await api("/api/overview");
    if (res.ok) { overview = await res.json(); document.body.dataset.overview = overview.now; render(); }
  } catch (e) { /* the next tick retries */ }
}
async function act(verb, target, button) {
  button.disabled = true;
  try {
    const res = await api("/api/gateway/" + verb, {method: "POST",
      headers: {"Content-Type": "application/json"}, body: JSON.stringify({target})});
    const doc = await res.json();
    $("#status").textContent = res.ok ? verb + " " + target + ": " + doc.results.map(x => x.message).join(", ")
                                      : verb + " " + target + " refused: " + (doc.error || res.status);
  } finally { button.disabled = false; }
}
// --- a gateway's log: the tail, then each new line; the newest stays in view while the reader
// has not scrolled up (scrolled up, it stays where it is until they scroll back down).
const LOG_KEPT = 2000;
let logLines = [], logFollow = null, logFollowing = true;
function logAtBottom(pane) { return pane.scrollHeight - pane.scrollTop - pane.clientHeight < 8; }
function logState() { $("#log-state").textContent = logFollow ? (logFollowing ? "following" : "scrolled up: not following") : ""; }
function showLines(lines, note) {
  const pane = $("#log");
  logLines = logLines.concat(lines).slice(-LOG_KEPT);
  pane.textContent = logLines.join("\n") + (note ? (logLines.length ? "\n" : "") + note : "") || "(empty)";
  if (logFollowing) pane.scrollTop = pane.scrollHeight;
  logState();
}
// The reader's own scrolling decides: at the bottom it follows, scrolled up it stays put.
$("#log").addEventListener("scroll", () => { logFollowing = logAtBottom($("#log")); logState(); });
// A narrower or wider window wraps the lines anew: the newest stays in view while following.
new ResizeObserver(() => { if (logFollowing) $("#log").scrollTop = $("#log").scrollHeight; }).observe($("#log"));
async function showLog(target) {
  if (logFollow) logFollow.abort();
  const mine = logFollow = new AbortController();
  logLines = []; logFollowing = true;
  $("#log-target").textContent = target;
  const pane = $("#log");
  pane.textContent = "loading…";
  try {
    const res = await api("/api/logs?target=" + encodeURIComponent(target) + "&n=200&follow=1", {signal: mine.signal});
    if (!res.ok) {
      let doc = {}; try { doc = await res.json(); } catch (e) { /* not JSON */ }
      pane.textContent = doc.error || ("error " + res.status);
      return;
    }
    showLines([], "(no lines yet)");
    await readEvents(res, (name, data) => {
      if (logFollow !== mine) return;  // another gateway's log was asked for since
      if (name === "lines") showLines(JSON.parse(data));
      else if (name === "end") showLines([], "(" + JSON.parse(data).message + ")");
    });
  } catch (e) {
    if (logFollow === mine && e.name !== "AbortError") showLines([], "(the log stream broke: click the gateway again)");
  } finally {
    if (logFollow === mine) { logFollow = null; logState(); }
  }
}
async function readEvents(res, onEvent) {  // server-sent events: "event: NAME" and "data: …" lines
  const reader = res.body.getReader(), decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const {value, done} = await reader.read();
    if (done) return;
    buffer += decoder.decode(value, {stream: true});
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end); buffer = buffer.slice(end + 2);
      let name = "message", data = [];
      for (const line of block.split("\n")) {
        if (line.startsWith("event: ")) name = line.slice(7);
        else if (line.startsWith("data: ")) data.push(line.slice(6));
      }
      if (data.length) onEvent(name, data.join("\n"));
    }
  }
}
$("#filter").oninput = render;
function onState(doc) {
  rows = doc.gateways; events = doc.events;
  // What did not answer, in the words `hermesctl ps` ends with (the server's render/ps_rows.warnings).
  $("#unanswered").replaceChildren(...(doc.warnings || []).map((text) => {
    const d = document.createElement("div"); d.textContent = text; return d;
  }));
  loadOverview();
  $("#status").textContent = "live · " + plural(rows.filter(r => r.profile).length, "gateway", "gateways") + " · v" + doc.version;
  document.body.dataset.version = doc.version;
  render();
}
// EventSource cannot send a header: read the stream with fetch instead.
async function connect() {
  if (!TOKEN) { $("#status").textContent = "no token"; needToken(false); return; }
  for (;;) {
    try {
      const res = await api("/api/events");
      if (res.status === 401 || res.status === 403) {
        setMode(false); $("#status").textContent = "refused"; needToken(true); return;
      }
      if (res.ok) {
        setMode(true);
        await readEvents(res, (name, data) => { if (name === "state") onState(JSON.parse(data)); });
      } else {
        $("#status").textContent = res.status === 503 ? "starting…" : "error " + res.status;
      }
    } catch (e) { /* dropped: reconnect */ }
    if ($("#status").textContent.startsWith("live")) $("#status").textContent = "reconnecting…";
    await new Promise((r) => setTimeout(r, 1000));
  }
}
connect();
loadOverview();
setInterval(loadOverview, 5000);
</script></body></html>
"""


def page() -> bytes:
    from hermesctl.serve.auth import SESSION_KEY
    return PAGE.replace("__SESSION_KEY__", SESSION_KEY).encode()
