"""Issue 17: the fleet page in Debian's headless Chromium at three widths: the summary line
(gateways up/down/crash-looping/parked, containers unhealthy, endpoints unreachable, spend
today), rows grouped by container with health, a spend/activity chart per profile drawn from
serve's own history, changes in words, and nothing overlapping from 1024 to 1920 px.

HERMESCTL_SCREENSHOTS=DIR also saves the three screenshots there (docs/ holds the last ones)."""
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT, RUN_ID, ctrl_c, hermesctl, svstat, wait_for, wait_ready
from test_serve import _browser
from test_serve_usage import Served
from usage_seed import seed

WIDTHS = (1024, 1440, 1920)


@pytest.fixture
def page_served(containers, tmp_path):
    project = f"hct{RUN_ID}page"
    labels = {"com.docker.compose.project": project}
    web = containers.start("web-1", env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"}, labels=labels, wait=False)
    other = containers.start("web-2", labels=labels, wait=False)  # the two boot side by side
    wait_ready(web)
    wait_ready(other)
    for n, (c, p) in enumerate(((web, "coder"), (web, "writer"), (other, "support"))):
        assert hermesctl("profile", "create", f"{c.name}:{p}").code == 0
        seed(c, f"/opt/data/profiles/{p}/state.db", 400, 31 + n)
    wait_for(lambda: svstat(web, "default")["up"], what="web-1's default gateway")
    token = tmp_path / "token"
    token.write_text("page-test-token-0123456789abcdef\n")
    token.chmod(0o600)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HERMESCTL_SOCKET": str(tmp_path / "run" / "serve.sock")}
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", project, "serve", "--listen",
                             "127.0.0.1:0", "--interval", "0.3", "--usage-interval", "0.5", "--token-file",
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


def test_the_page_summary_groups_chart_and_words_at_three_widths(page_served, tmp_path):
    web, other, served = page_served
    driver = _browser()
    shots = os.environ.get("HERMESCTL_SCREENSHOTS")
    try:
        driver.get(served.url + "#token=" + served.token)
        js = "return document.querySelector(arguments[0]) && document.querySelector(arguments[0]).textContent"
        wait_for(lambda: "spent today" in (driver.execute_script(js, "#summary") or ""), timeout=60,
                 what="the summary line")
        # Rows grouped by container, each group's header with its health.
        wait_for(lambda: driver.execute_script(
            "return Array.from(document.querySelectorAll('tr.group')).map(r => r.dataset.container)")
            == sorted([web.name, other.name]), timeout=30, what="one group per container")
        header = driver.execute_script(js, f"tr.group[data-container='{web.name}']")
        assert re.search(r"(healthy|starting|no health check) · \$\d+\.\d\d today", header), header
        # A chart per profile with usage, from serve's history: spend grows when sessions arrive.
        try:
            wait_for(lambda: driver.execute_script("return document.querySelectorAll('#charts svg polyline').length") >= 6,
                     timeout=30, what="charts")
        except AssertionError:
            import urllib.request
            raise AssertionError(urllib.request.urlopen(served.url + "api/overview").read()[:3000]) from None
        seed(web, "/opt/data/profiles/coder/state.db", 30, 77)
        wait_for(lambda: re.search(r"\$\d+\.\d\d · 30 sessions in",
                                   driver.execute_script(js, f"#charts .chart[data-target='{web.name}:coder']") or ""),
                 timeout=30, what="the chart showing the new sessions")
        # Changes in words.
        assert hermesctl("gateway", "stop", f"{web.name}:default").code == 0
        wait_for(lambda: f"{web.name}:default stopped by hermesctl" in (driver.execute_script(js, "#events") or ""),
                 timeout=30, what="the stop, in words")
        summary = driver.execute_script(js, "#summary")
        assert re.search(r"\d+ gateways in 2 containers:.*\d+ up.*\d+ down.*\d+ crash-looping.*\d+ parked"
                         r".*\d+ containers unhealthy.*\d+ endpoints unreachable.*\$\d+\.\d\d spent today", summary), summary
        for width in WIDTHS:
            driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                                   {"width": width, "height": 1000, "deviceScaleFactor": 1, "mobile": False})
            driver.execute_script("render()")
            result = driver.execute_script(OVERLAPS)
            assert result["buttons"] >= 9, result  # 3 per gateway, with the token
            assert result["clash"] == [] and result["pageOverflow"] <= 0, (width, result)
            driver.save_screenshot(str(tmp_path / f"page-{width}.png"))
            if shots:
                Path(shots).mkdir(parents=True, exist_ok=True)
                driver.save_screenshot(str(Path(shots) / f"serve-{width}.png"))
    finally:
        driver.quit()
