"""Make docs/serve.png: three Hermes containers with a few gateways and a day's usage (one of
them unhealthy, one over its budget), `hermesctl serve` over them alone (a compose project
label), and the page opened with the token in Debian's headless Chromium, a gateway's log
open. Removes what it starts.

    python3 scripts/screenshot-serve.py [IMAGE]     # SHOT_PREFIX names the containers (shot-hermes)
"""
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from conftest import sh, wait_for, wait_ready  # noqa: E402
from test_serve import _browser  # noqa: E402
from test_serve_page import FAST_HEALTH, session_now  # noqa: E402
from usage_seed import seed  # noqa: E402

IMAGE = sys.argv[1] if len(sys.argv) > 1 else "hermes-agent:local"
PREFIX = os.environ.get("SHOT_PREFIX", "shot-hermes")
client = docker.from_env()
made = []
proc = None
try:
    for i, profiles in enumerate((["coder", "writer"], ["coder"], ["support", "triage", "coder"]), 1):
        c = client.containers.run(IMAGE, ["sleep", "infinity"], name=f"{PREFIX}-{i}", detach=True,
                                  network_disabled=True, labels={"com.docker.compose.project": PREFIX},
                                  environment={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"},
                                  **({"healthcheck": FAST_HEALTH} if i == 3 else {}))
        made.append(c)
    for i, c in enumerate(made, 1):
        wait_ready(c)
        for n, p in enumerate((["coder", "writer"], ["coder"], ["support", "triage", "coder"])[i - 1]):
            c.exec_run(["hermes", "profile", "create", p], user="hermes")
            c.exec_run(["/opt/hermes/docker/hermes-slots", "adopt", p], user="hermes")
            seed(c, f"/opt/data/profiles/{p}/state.db", 300, 10 * i + n)
        c.exec_run(["/command/s6-svc", "-u", "/run/service/gateway-coder"], user="hermes")
    # triage dies at once, every time: its container turns unhealthy, and the page says why.
    sh(made[2], "printf '#!/bin/sh\\nexit 1\\n' > /run/service/gateway-triage/run.new && chmod +x "
                "/run/service/gateway-triage/run.new && mv /run/service/gateway-triage/run.new "
                "/run/service/gateway-triage/run && /command/s6-svc -u /run/service/gateway-triage")
    fleet = Path(f"/tmp/{PREFIX}-fleet.yaml")
    fleet.write_text(f"version: 1\ncontainers:\n  {PREFIX}-1:\n    budget: {{daily_usd: 5}}\n    profiles:\n"
                     f"      coder: {{budget: {{daily_usd: 50}}}}\n      writer: {{budget: {{daily_usd: 2}}}}\n")
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", PREFIX, "--fleet", str(fleet), "serve",
                             "--listen", "127.0.0.1:0", "--interval", "1", "--usage-interval", "2",
                             "--socket", f"/tmp/{PREFIX}-serve.sock"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    url = re.search(r"(http://\S+/) ", proc.stdout.readline()).group(1)
    token = re.search(r"token \(shown once\): (\S+)", proc.stdout.readline()).group(1)
    # The day goes on while serve watches: sessions now, so the charts have a course.
    for k in range(4):
        time.sleep(3)
        session_now(made[0], "/opt/data/profiles/coder/state.db", f"shot-{k}", 1.5 + k)
        session_now(made[0], "/opt/data/profiles/writer/state.db", f"shot-w{k}", 0.8)
    subprocess.run([sys.executable, "-m", "hermesctl", "gateway", "restart", f"{PREFIX}-2:coder"],
                   cwd=ROOT, capture_output=True)
    driver = _browser()
    driver.set_window_size(1600, 1000)
    driver.get(url + "#token=" + token)
    wait_for(lambda: driver.execute_script("return document.querySelectorAll('#alerts .unhealthy-reason').length"),
             timeout=120, what="the unhealthy container's reason")
    wait_for(lambda: driver.execute_script("return document.querySelectorAll('#charts .chart').length") >= 6,
             timeout=60, what="the charts")
    driver.execute_script(f"document.querySelector(\"tr[data-target='{PREFIX}-1:coder']\").click()")
    time.sleep(3)
    driver.save_screenshot(str(ROOT / "docs" / "serve.png"))
    driver.quit()
finally:
    if proc is not None:
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    for c in made:
        c.remove(force=True, v=True)
