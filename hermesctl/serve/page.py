"""The fleet page: the `hermesctl ps` table, live over server-sent events, filterable by a target
glob, with recent changes beside it and a gateway's log tail on click.

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
 #layout { display: grid; grid-template-columns: minmax(0, 3fr) minmax(0, 1fr); gap: 1.2em; }
 table { border-collapse: collapse; width: 100%; }
 th, td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #eee; white-space: nowrap; }
 th { font-weight: 600; background: #fafafa; }
 tr.gateway { cursor: pointer; } tr.gateway:hover { background: #f4f8ff; }
 .up { color: #0a7d2c; } .down, .parked, .crash-loop, .orphaned, .timeout, .error { color: #b3261e; font-weight: 600; }
 #events { font-family: ui-monospace, monospace; font-size: 12px; max-height: 70vh; overflow: auto; }
 #events div { border-bottom: 1px solid #f0f0f0; padding: 2px 0; }
 #log { font-family: ui-monospace, monospace; font-size: 12px; background: #111; color: #ddd;
        padding: .6em; max-height: 40vh; overflow: auto; white-space: pre-wrap; }
 button { font-size: 12px; margin-right: 3px; }
 #status { color: #888; }
</style></head>
<body>
<h1>Hermes fleet <small id="status">connecting…</small></h1>
<p><label>Filter <input id="filter" placeholder="CONTAINER[:PROFILE] glob, e.g. web-*:coder" size="40"></label>
 <span id="mode"></span></p>
<div id="layout">
 <div><table id="fleet"><thead><tr>
  <th>CONTAINER</th><th>PROFILE</th><th>STATE</th><th>PID</th><th>UPTIME</th><th>WANTED</th>
  <th>GATEWAY</th><th>DESIRED</th><th>PLATFORMS</th><th id="actions-head"></th></tr></thead>
  <tbody></tbody></table>
  <h2 style="font-size:1em">Log <small id="log-target"></small></h2><div id="log">click a gateway</div></div>
 <div><h2 style="font-size:1em;margin-top:0">Recent changes</h2><div id="events"></div></div>
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
function render() {
  const body = $("#fleet tbody");
  body.replaceChildren();
  for (const r of rows.filter(selected)) {
    const tr = document.createElement("tr");
    tr.dataset.target = r.target;
    if (r.profile) { tr.className = "gateway"; tr.onclick = () => showLog(r.target); }
    cell(tr, r.container); cell(tr, r.profile); cell(tr, r.state, r.state);
    cell(tr, r.pid); cell(tr, age(r.uptime_s)); cell(tr, r.wanted); cell(tr, r.gateway_state);
    cell(tr, r.desired_state);
    cell(tr, Object.entries(r.platforms || {}).map(([k, v]) => k + ":" + ((v && v.state) || "?")).join(" ") || "-");
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
  const ev = $("#events");
  ev.replaceChildren();
  const shown = events.filter(e => { const [c, p] = e.target.split(":"); return selected({container: c, profile: p}); });
  for (const e of shown.slice().reverse().slice(0, 100)) {
    const d = document.createElement("div");
    d.textContent = new Date(e.time * 1000).toLocaleTimeString() + "  " + e.target + "  " + e.field + ": " +
      JSON.stringify(e.old) + " → " + JSON.stringify(e.new);
    ev.appendChild(d);
  }
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
</script></body></html>
"""


def page() -> bytes:
    from hermesctl.serve.auth import SESSION_KEY
    return PAGE.replace("__SESSION_KEY__", SESSION_KEY).encode()
