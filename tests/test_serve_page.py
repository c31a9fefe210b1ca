"""Issues 17 and 24: the fleet page in Debian's headless Chromium at three widths (1024, 1440,
1920 px), as an operator sees it:
- the summary line (gateways up/down/crash-looping/parked, containers unhealthy, endpoints
  unreachable, spend today) in agreeing numbers ("1 container unhealthy"), and under it why:
  which container is unhealthy and what its health check found;
- rows grouped by container with health and budget in each group's header; each profile's
  spend today and its budget, a mark on what is over its budget;
- per profile a chart of the day with time and value axes whose labels, units and the profile's
  name are inside the chart and the window (element boxes), and whose figures are the TODAY
  column's (and `hermesctl usage`'s for the day);
- a gateway's log opened with its newest line in view, followed while the reader has not
  scrolled up;
- changes in words, and nothing overlapping.

HERMESCTL_SCREENSHOTS=DIR also saves the three screenshots there (docs/ holds the last ones)."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, RUN_ID, ctrl_c, hermesctl, sh, svstat, wait_for, wait_ready
from test_serve import _browser
from test_serve_usage import Served
from usage_seed import VENV_PYTHON, seed

WIDTHS = (1024, 1440, 1920)
# The image's healthcheck, every half second: health is seen within the test.
FAST_HEALTH = {"test": ["CMD", "/opt/hermes/docker/healthcheck.sh"], "interval": 500_000_000,
               "timeout": 2_000_000_000, "retries": 1, "start_period": 0}
# One session started now, with its estimated cost: the day's figures grow by exactly this.
SESSION_NOW = r"""
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None)
now = time.time()
c.execute("INSERT INTO sessions (id, source, model, started_at, ended_at, message_count, tool_call_count, "
          "input_tokens, output_tokens, cache_read_tokens, cache_write_tokens, reasoning_tokens, "
          "estimated_cost_usd, cost_status, api_call_count) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
          (sys.argv[2], "cli", "local-llama", now, now + 1, 1, 0, 10, 10, 0, 0, 0, float(sys.argv[3]), "estimated", 1))
"""


def session_now(container, db: str, sid: str, usd: float) -> None:
    result = container.exec_run([VENV_PYTHON, "-c", SESSION_NOW, db, sid, str(usd)], user="hermes")
    assert result.exit_code == 0, result.output.decode()[-2000:]


@pytest.fixture
def page_served(containers, tmp_path):
    project = f"hct{RUN_ID}page"
    labels = {"com.docker.compose.project": project}
    web = containers.start("web-1", env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"}, labels=labels, wait=False)
    other = containers.start("web-2", labels=labels, wait=False, healthcheck=FAST_HEALTH)  # the two boot side by side
    wait_ready(web)
    wait_ready(other)
    for n, (c, p) in enumerate(((web, "coder"), (web, "writer"), (other, "support"))):
        assert hermesctl("profile", "create", f"{c.name}:{p}").code == 0
        seed(c, f"/opt/data/profiles/{p}/state.db", 400, 31 + n)
    # Spend today whatever the hour: web-1 is over its container budget, writer over its own.
    session_now(web, "/opt/data/profiles/writer/state.db", "today-w", 1.25)
    # web-2's support gateway dies at once, every time: wanted up, down, the container unhealthy.
    sh(other, "printf '#!/bin/sh\\nexit 1\\n' > /run/service/gateway-support/run.new && chmod +x "
              "/run/service/gateway-support/run.new && mv /run/service/gateway-support/run.new "
              "/run/service/gateway-support/run")
    sh(other, "/command/s6-svc -u /run/service/gateway-support")
    wait_for(lambda: svstat(web, "default")["up"], what="web-1's default gateway")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"version: 1\ncontainers:\n  {web.name}:\n    budget: {{daily_usd: 0.5}}\n    profiles:\n"
                     f"      coder: {{budget: {{daily_usd: 100000}}}}\n      writer: {{budget: {{daily_usd: 0.01}}}}\n")
    token = tmp_path / "token"
    token.write_text("page-test-token-0123456789abcdef\n")
    token.chmod(0o600)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HERMESCTL_SOCKET": str(tmp_path / "run" / "serve.sock")}
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", project, "--fleet", str(fleet), "serve",
                             "--listen", "127.0.0.1:0", "--interval", "0.3", "--usage-interval", "0.5", "--token-file",
                             str(token)], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(http://\S+/) ", proc.stdout.readline()).group(1)
        yield web, other, Served(url, token.read_text().strip())
    finally:
        ctrl_c(proc)


OVERLAPS = """
const boxes = (sel) => Array.from(document.querySelectorAll(sel)).map(e => e.getBoundingClientRect())
  .filter(r => r.width > 0 && r.height > 0);
const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
const side = document.querySelector('#layout').children[1].getBoundingClientRect();
const wrap = document.querySelector('#table-wrap');
const main = wrap.getBoundingClientRect();
const clash = [];
for (const b of boxes('#fleet button, #fleet td')) if (hit(b, side)) clash.push('table/side');
if (wrap.scrollWidth > wrap.clientWidth) clash.push('table scrolls: buttons out of sight');
if (hit(main, side)) clash.push('columns');
const buttons = boxes('#fleet button');
for (let i = 0; i < buttons.length; i++) for (let j = i + 1; j < buttons.length; j++)
  if (hit(buttons[i], buttons[j])) clash.push('buttons');
const spans = boxes('#summary > span');
for (let i = 0; i < spans.length; i++) for (let j = i + 1; j < spans.length; j++)
  if (hit(spans[i], spans[j])) clash.push('summary');
return {clash, pageOverflow: document.documentElement.scrollWidth - window.innerWidth, buttons: buttons.length};
"""

# Every chart as a person sees it: its name, its figures, its axis labels, each inside the chart,
# the chart inside the window, no label on another, and the figures of the table's row.
CHARTS = """
const inside = (a, b) => a.left >= b.left - 0.5 && a.right <= b.right + 0.5 && a.top >= b.top - 0.5 && a.bottom <= b.bottom + 0.5;
const hit = (a, b) => a.left < b.right - 0.5 && b.left < a.right - 0.5 && a.top < b.bottom - 0.5 && b.top < a.bottom - 0.5;
const view = {left: 0, top: -1e9, right: window.innerWidth, bottom: 1e9};
const out = [];
for (const chart of document.querySelectorAll('#charts .chart')) {
  const box = chart.getBoundingClientRect();
  const name = chart.querySelector('.name'), figures = chart.querySelector('.figures'), svg = chart.querySelector('svg');
  const problems = [];
  if (!inside(box, view)) problems.push('chart outside the window');
  for (const [what, el] of [['name', name], ['figures', figures]]) {
    const r = el.getBoundingClientRect();
    if (!(r.width > 0) || !inside(r, box)) problems.push(what + ' outside its chart');
    if (el.scrollWidth > el.clientWidth + 1) problems.push(what + ' cut');
  }
  const s = svg.getBoundingClientRect();
  if (!inside(s, box)) problems.push('svg outside its chart');
  const labels = Array.from(svg.querySelectorAll('text')).map(t => ({cls: t.getAttribute('class'), text: t.textContent,
                                                                   r: t.getBoundingClientRect()}));
  for (const l of labels) {
    if (!(l.r.width > 0)) problems.push('label not drawn: ' + l.text);
    if (!inside(l.r, s)) problems.push('label cut: ' + l.text);
  }
  for (let i = 0; i < labels.length; i++) for (let j = i + 1; j < labels.length; j++)
    if (hit(labels[i].r, labels[j].r)) problems.push('labels overlap: ' + labels[i].text + ' / ' + labels[j].text);
  const row = document.querySelector(`#fleet tr[data-target='${chart.dataset.target}']`);
  out.push({target: chart.dataset.target, name: name.textContent, figures: figures.textContent,
            over: figures.classList.contains('over'),
            time: labels.filter(l => l.cls === 'x-time').map(l => l.text),
            usd: labels.filter(l => l.cls === 'y-usd').map(l => l.text),
            sessions: labels.filter(l => l.cls === 'y-sessions').map(l => l.text),
            lines: svg.querySelectorAll('polyline.spend, polyline.sessions').length,
            today: row ? row.querySelector('td.today').textContent : null,
            budget: row ? row.querySelector('td.budget').textContent : null, problems});
}
return out;
"""

# The log pane's newest line: its box inside the pane's visible box.
NEWEST_LOG_LINE = """
const pane = document.querySelector('#log'), text = pane.firstChild;
if (!text || !text.data.includes(arguments[0])) return {shown: false};
const range = document.createRange(), at = text.data.lastIndexOf(arguments[0]);
range.setStart(text, at); range.setEnd(text, at + arguments[0].length);
const r = range.getBoundingClientRect(), p = pane.getBoundingClientRect();
return {shown: true, visible: r.top >= p.top - 0.5 && r.bottom <= p.bottom + 0.5 && r.width > 0,
        overflowing: pane.scrollHeight > pane.clientHeight, scrollTop: pane.scrollTop,
        last: text.data.trimEnd().endsWith(arguments[0]), state: document.querySelector('#log-state').textContent};
"""


def _log_append(container, *lines: str) -> None:
    sh(container, "printf '%s\\n' " + " ".join(f"'{line}'" for line in lines) + " >> /opt/data/logs/gateways/default/current")


def _figures(text: str) -> tuple[str, int]:
    found = re.match(r"(\$\d+\.\d\d) today · (\d+) sessions?\b", text)
    assert found, text
    return found.group(1), int(found.group(2))


def test_the_page_at_three_widths_as_an_operator_sees_it(page_served, tmp_path):
    web, other, served = page_served
    driver = _browser()
    shots = os.environ.get("HERMESCTL_SCREENSHOTS")
    js = "return document.querySelector(arguments[0]) && document.querySelector(arguments[0]).textContent"
    try:
        driver.get(served.url + "#token=" + served.token)
        wait_for(lambda: "spent today" in (driver.execute_script(js, "#summary") or ""), timeout=60,
                 what="the summary line")
        # Rows grouped by container, each group's header with its health and spend.
        wait_for(lambda: driver.execute_script(
            "return Array.from(document.querySelectorAll('tr.group')).map(r => r.dataset.container)")
            == sorted([web.name, other.name]), timeout=30, what="one group per container")
        # Why web-2 is unhealthy: which container, what its health check found.
        reason = wait_for(lambda: re.search(
            "gateway support down but wanted up", text := driver.execute_script(js, f"#alerts .unhealthy-reason[data-container='{other.name}']") or "") and text,
            timeout=90, what="the unhealthy container's reason")
        assert reason.startswith(f"⚠ {other.name} is unhealthy: health check failed (exit 1"), reason
        assert "unhealthy: health check failed" in driver.execute_script(js, f"tr.group[data-container='{other.name}']")
        assert re.search(r"(?<!\d)1 container unhealthy", driver.execute_script(js, "#summary"))
        # Budgets: shown where set, a mark where spent over (web-1's container budget, writer's own).
        wait_for(lambda: driver.execute_script(js, f"#fleet tr[data-target='{web.name}:writer'] td.budget")
                 == "⚠ over $0.01/day", timeout=30, what="writer over its budget")
        assert driver.execute_script(js, f"#fleet tr[data-target='{web.name}:coder'] td.budget") == "$100k/day"
        header = driver.execute_script(js, f"tr.group[data-container='{web.name}']")
        assert re.search(r"(healthy|starting|no health check) · \$\d+\.\d\d today of \$0\.50/day ⚠ over budget$", header), header
        assert "over its budget" in driver.execute_script(js, f"#alerts .over-budget[data-container='{web.name}']")
        assert driver.execute_script(js, f"#fleet tr[data-target='{other.name}:support'] td.budget") == "-"
        # A chart per profile; a session now: the chart's figures and the table's grow together.
        wait_for(lambda: driver.execute_script("return document.querySelectorAll('#charts svg polyline').length") >= 6,
                 timeout=30, what="charts")
        before = _figures(driver.execute_script(js, f"#charts .chart[data-target='{web.name}:coder'] .figures"))
        session_now(web, "/opt/data/profiles/coder/state.db", "today-c", 2.5)
        after = wait_for(lambda: (f := _figures(driver.execute_script(
            js, f"#charts .chart[data-target='{web.name}:coder'] .figures")))[1] == before[1] + 1 and f,
            timeout=30, what="the chart showing the new session")
        assert abs(float(after[0][1:]) - float(before[0][1:]) - 2.5) <= 0.011, (before, after)  # cents rounded
        assert driver.execute_script(js, f"#fleet tr[data-target='{web.name}:coder'] td.today") == f"{after[0]} ({after[1]})"
        # ... and they are `hermesctl usage`'s for the day (sessions started since 00:00 UTC), both
        # read within one UTC day.
        def agree():
            day = time.strftime("%Y-%m-%d", time.gmtime())
            usage = hermesctl("usage", f"{web.name}:coder", "--since", day, "--json")
            assert usage.code == 0, usage
            coder = usage.json()["profiles"][0]
            page = _figures(driver.execute_script(js, f"#charts .chart[data-target='{web.name}:coder'] .figures"))
            return day == time.strftime("%Y-%m-%d", time.gmtime()) and \
                (f"${coder['estimated_usd']:.2f}", coder["sessions"]) == page
        wait_for(agree, timeout=60, what="the page's figures and `hermesctl usage`'s for the day")
        # Changes in words.
        assert hermesctl("gateway", "stop", f"{web.name}:default").code == 0
        wait_for(lambda: f"{web.name}:default stopped by hermesctl" in (driver.execute_script(js, "#events") or ""),
                 timeout=30, what="the stop, in words")
        summary = driver.execute_script(js, "#summary")
        assert re.search(r"\d+ gateways in 2 containers:.*\d+ up.*\d+ down.*\d+ crash-looping.*\d+ parked"
                         r".*1 container unhealthy.*0 endpoints unreachable.*\$\d+\.\d\d spent today "
                         r"\(\d+ sessions?\)", summary), summary
        # The log opens with its newest line in view and follows.
        _log_append(web, *(f"seeded line {n:03d}" for n in range(300)))
        driver.execute_script(f"document.querySelector(\"tr[data-target='{web.name}:default']\").click()")
        shown = wait_for(lambda: (r := driver.execute_script(NEWEST_LOG_LINE, "seeded line 299"))["shown"] and r,
                         timeout=30, what="the log's newest line")
        assert shown["overflowing"] and shown["visible"] and shown["last"] and shown["state"] == "following", shown
        _log_append(web, "followed line A")
        wait_for(lambda: (r := driver.execute_script(NEWEST_LOG_LINE, "followed line A"))["shown"] and r["visible"],
                 timeout=30, what="a new line, in view")
        # Scrolled up, the reader stays where they are; back at the bottom, it follows again.
        driver.execute_script("const p = document.querySelector('#log'); p.scrollTop = 0;"
                              "p.dispatchEvent(new Event('scroll'));")
        _log_append(web, "followed line B")
        b = wait_for(lambda: (r := driver.execute_script(NEWEST_LOG_LINE, "followed line B"))["shown"] and r,
                     timeout=30, what="a line written while scrolled up")
        assert not b["visible"] and b["scrollTop"] == 0 and b["state"] == "scrolled up: not following", b
        driver.execute_script("const p = document.querySelector('#log'); p.scrollTop = p.scrollHeight;"
                              "p.dispatchEvent(new Event('scroll'));")
        _log_append(web, "<img src=x onerror=window.pwned=1>", "followed line C")
        wait_for(lambda: (r := driver.execute_script(NEWEST_LOG_LINE, "followed line C"))["shown"] and r["visible"],
                 timeout=30, what="following again")
        # What the gateway wrote is text on the page, never markup.
        assert driver.execute_script("return [document.querySelectorAll('#log *').length, window.pwned === undefined, "
                                     "document.querySelector('#log').textContent.includes('<img src=x')]") == [0, True, True]
        for width in WIDTHS:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
            driver.execute_script("render()")
            result = driver.execute_script(OVERLAPS)
            assert result["buttons"] >= 3, result  # with the token: start, or stop and restart, per gateway
            assert result["clash"] == [] and result["pageOverflow"] <= 0, (width, result)
            charts = driver.execute_script(CHARTS)
            assert sorted(c["target"] for c in charts) == sorted(
                [f"{web.name}:coder", f"{web.name}:writer", f"{other.name}:support"]), charts
            for c in charts:
                assert c["problems"] == [], (width, c)
                assert c["name"] == c["target"]
                money, count = _figures(c["figures"])
                assert c["today"] == f"{money} ({count})", (width, c)  # the table's figure
                assert c["time"][:1] == ["00:00"] and c["time"][-1] == "24:00" and len(c["time"]) >= 3, (width, c)
                assert len(c["usd"]) == 3 and all(t.startswith("$") for t in c["usd"]) and c["usd"][0].startswith("$0")
                assert c["sessions"][0] == "0" and len(c["sessions"]) >= 2 and c["lines"] == 2, (width, c)
            writer = next(c for c in charts if c["target"] == f"{web.name}:writer")
            assert writer["over"] and "budget $0.01/day" in writer["figures"] and writer["budget"] == "⚠ over $0.01/day"
            legend = driver.execute_script("const side = document.querySelector('#layout').children[1];"
                                           "return side.querySelector('h2').textContent + side.querySelector('.legend').textContent")
            assert "today (UTC)" in legend and "spend, $" in legend and "sessions" in legend, legend
            # The log still shows its newest line at this width.
            wait_for(lambda: driver.execute_script(NEWEST_LOG_LINE, "followed line C")["visible"], timeout=10,
                     what=f"the newest log line in view at {width} px")
            driver.save_screenshot(str(tmp_path / f"page-{width}.png"))
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(Path(shots) / f"serve-page-{width}.png"))
            # The charts as one sees them after scrolling to them (below the table under 1400 px).
            driver.execute_script("document.querySelector('#charts').scrollIntoView()")
            driver.save_screenshot(str(tmp_path / f"charts-{width}.png"))
            driver.execute_script("window.scrollTo(0, 0)")
        # A deleted profile leaves the table, its chart and the day's sums.
        writer = _figures(driver.execute_script(js, f"#charts .chart[data-target='{web.name}:writer'] .figures"))
        spent = float(re.search(r"\$(\d+\.\d\d) spent today", driver.execute_script(js, "#summary")).group(1))
        assert hermesctl("profile", "delete", f"{web.name}:writer", "-y").code == 0
        wait_for(lambda: driver.execute_script(
            f"return !document.querySelector(\"#charts .chart[data-target='{web.name}:writer']\") && "
            f"!document.querySelector(\"#fleet tr[data-target='{web.name}:writer']\")"), timeout=30,
            what="the deleted profile's chart and row gone")
        left = float(re.search(r"\$(\d+\.\d\d) spent today", driver.execute_script(js, "#summary")).group(1))
        assert abs(spent - float(writer[0][1:]) - left) <= 0.011, (spent, writer, left)
    finally:
        driver.quit()
