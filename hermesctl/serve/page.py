"""The fleet page: a summary line, the `hermesctl ps` table grouped by container (node and health
in each group's header), live over server-sent events and filterable by a target glob; spend and
activity per profile over the last day (serve's own history, /api/overview), recent changes in
words, and a gateway's log tail on click. The layout never overlaps from 1024 px up: the table
scrolls inside its column, and below 1400 px the side column goes under.

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
 tr.group td { background: #f1f3f6; font-weight: 600; padding-top: 6px; }
 tr.group .health { font-weight: normal; color: #555; margin-left: .8em; }
 tr.group .unhealthy, tr.group .stopped { color: #b3261e; }
 td.container { width: 1em; padding: 0; font-size: 0; } /* the group header names it */
 #charts .chart { display: grid; grid-template-columns: minmax(0, 1fr) 180px; align-items: center;
                  gap: .4em; border-bottom: 1px solid #f0f0f0; padding: 2px 0; }
 #charts .name { overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
 #charts svg { display: block; }
 .legend { color: #888; font-size: 11px; }
 table { border-collapse: collapse; width: 100%; }
 th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee; white-space: nowrap; }
 th { font-weight: 600; background: #fafafa; }
 tr.gateway { cursor: pointer; } tr.gateway:hover { background: #f4f8ff; }
 .up { color: #0a7d2c; } .down, .parked, .crash-loop, .orphaned, .platforms-fatal, .timeout, .error { color: #b3261e; font-weight: 600; }
 #events { font-size: 12px; max-height: 50vh; overflow: auto; }
 #events time { color: #888; font-variant-numeric: tabular-nums; margin-right: .5em; }
 #events div { border-bottom: 1px solid #f0f0f0; padding: 2px 0; }
 #log { font-family: ui-monospace, monospace; font-size: 12px; background: #111; color: #ddd;
        padding: .6em; max-height: 40vh; overflow: auto; white-space: pre-wrap; }
 button { font-size: 12px; margin-right: 3px; }
 #status { color: #888; }
</style></head>
<body>
<h1>Hermes fleet <small id="status">connecting…</small></h1>
<div id="summary">loading…</div>
<p><label>Filter <input id="filter" placeholder="CONTAINER[:PROFILE] glob, e.g. web-*:coder" size="40"></label>
 <span id="mode"></span></p>
<div id="layout">
 <div><div id="table-wrap"><table id="fleet"><thead><tr>
  <th></th><th>PROFILE</th><th>STATE</th><th>PID</th><th>UPTIME</th><th>WANTED</th>
  <th>GATEWAY</th><th>DESIRED</th><th>PLATFORMS</th><th title="estimated cost (sessions) of sessions started today, UTC">TODAY</th><th id="actions-head"></th></tr></thead>
  <tbody></tbody></table></div>
  <h2 style="font-size:1em">Log <small id="log-target"></small></h2><div id="log">click a gateway</div></div>
 <div><h2 style="font-size:1em;margin-top:0">Spend and activity, last 24 h
  <span class="legend">(<span style="color:#1f5fbf">— $</span> <span style="color:#999">— sessions</span>)</span></h2>
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
function usageOf(container, profile) {
  const g = overview && overview.groups.find(g => g.container === container);
  return g && g.profiles[profile];
}
function groupRow(body, name, list) {
  const tr = document.createElement("tr");
  tr.className = "group"; tr.dataset.container = name;
  const td = cell(tr, name); td.colSpan = 11;
  const g = overview && overview.groups.find(g => g.container === name);
  const first = list[0];
  const bits = [];
  if (first && first.endpoint && first.endpoint !== "default") bits.push("on " + first.endpoint);
  const health = g ? (!g.running ? "stopped" : (g.health || "no health check")) : null;
  if (health) bits.push(health);
  if (g) bits.push(money(Object.values(g.profiles).reduce((a, p) => a + p.spend_today_usd, 0)) + " today");
  const span = document.createElement("span");
  span.className = "health " + (health || ""); span.textContent = bits.join(" · ");
  td.appendChild(span);
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
      cell(tr, u ? money(u.spend_today_usd) + " (" + u.sessions_today + ")" : null);
      const actions = cell(tr, "");
      if (CAN_ACT && r.profile) {
        for (const verb of ["start", "stop", "restart"]) {
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
function svgLine(points, pick, colour, w, h) {
  // x: from the oldest point kept (at most a day ago) to now; y: 0 to the series' own maximum
  const span = Math.max(...points.map(p => p[0]), 60);
  const max = Math.max(...points.map(pick), 0) || 1;
  const xy = points.map(p => [(w - (p[0] / span) * w).toFixed(1), (h - 2 - (pick(p) / max) * (h - 4)).toFixed(1)]);
  xy.push([w.toFixed(1), xy[xy.length - 1][1]]);  // held until now
  return `<polyline fill="none" stroke="${colour}" stroke-width="1.5" points="${xy.map(p => p.join(",")).join(" ")}"/>`;
}
function renderOverview() {
  if (!overview) return;
  const s = overview.summary;
  const parts = [
    ["up", s.up], ["down", s.down, s.down > 0], ["crash-looping", s.crash_looping, s.crash_looping > 0],
    ["parked", s.parked, s.parked > 0], ["containers unhealthy", s.containers_unhealthy, s.containers_unhealthy > 0],
    ["endpoints unreachable", s.endpoints_unreachable.length, s.endpoints_unreachable.length > 0]];
  const sum = $("#summary");
  sum.replaceChildren();
  const lead = document.createElement("span");
  lead.textContent = s.gateways + " gateways in " + s.containers + " containers:";
  sum.appendChild(lead);
  for (const [label, n, bad] of parts) {
    const span = document.createElement("span");
    span.dataset.key = label;
    const b = document.createElement("b"); b.textContent = n; if (bad) b.className = "bad";
    span.append(b, " " + label);
    sum.appendChild(span);
  }
  const spend = document.createElement("span");
  spend.dataset.key = "spend";
  const b = document.createElement("b"); b.textContent = money(s.spend_today_usd);
  spend.append(b, " spent today (" + s.sessions_today + " sessions)");
  sum.appendChild(spend);
  const charts = $("#charts");
  const shown = overview.charts.filter(c => selected({container: c.container, profile: c.profile}));
  if (!shown.length) { charts.textContent = "no usage yet"; }
  else {
    charts.replaceChildren();
    for (const c of shown) {
      const row = document.createElement("div");
      row.className = "chart"; row.dataset.target = c.container + ":" + c.profile;
      const name = document.createElement("div");
      name.className = "name";
      const since = Math.max(...c.points.map(p => p[0]));
      name.textContent = c.container + ":" + c.profile + "  " + money(c.spend_usd) + " · " + c.sessions +
        " sessions in " + age(Math.round(since));
      name.title = name.textContent;
      const w = 180, h = 34;
      const pic = document.createElement("div");
      pic.innerHTML = `<svg width="${w}" height="${h}" viewBox="0 0 ${w} ${h}" role="img">` +
        `<rect width="${w}" height="${h}" fill="#fafbfc"/>` + svgLine(c.points, p => p[2], "#999", w, h) +
        svgLine(c.points, p => p[1], "#1f5fbf", w, h) + `</svg>`;
      row.append(name, pic);
      charts.appendChild(row);
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
async function showLog(target) {
  $("#log-target").textContent = target;
  const res = await api("/api/logs?target=" + encodeURIComponent(target) + "&n=100");
  const doc = await res.json();
  $("#log").textContent = res.ok ? (doc.lines.join("\n") || "(empty)") : (doc.error || res.status);
}
$("#filter").oninput = render;
function onState(doc) {
  rows = doc.gateways; events = doc.events;
  loadOverview();
  $("#status").textContent = "live · " + rows.filter(r => r.profile).length + " gateways · v" + doc.version;
  document.body.dataset.version = doc.version;
  render();
}
function onBlock(block) {  // one server-sent event: "event: NAME" and "data: …" lines
  let name = "message", data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) name = line.slice(7);
    else if (line.startsWith("data: ")) data.push(line.slice(6));
  }
  if (name === "state") onState(JSON.parse(data.join("\n")));
}
// EventSource cannot send a header: read the stream with fetch instead.
async function connect() {
  if (!TOKEN) { $("#status").textContent = "no token"; return; }
  for (;;) {
    try {
      const res = await api("/api/events");
      if (res.status === 401 || res.status === 403) { setMode(false); $("#status").textContent = "refused"; return; }
      if (res.ok) {
        setMode(true);
        const reader = res.body.getReader(), decoder = new TextDecoder();
        let buffer = "";
        for (;;) {
          const {value, done} = await reader.read();
          if (done) break;
          buffer += decoder.decode(value, {stream: true});
          let end;
          while ((end = buffer.indexOf("\n\n")) >= 0) { onBlock(buffer.slice(0, end)); buffer = buffer.slice(end + 2); }
        }
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
