"""Make docs/serve.png: three Hermes containers with a few gateways, `hermesctl serve`, and the
page opened with the token in Debian's headless Chromium. Removes what it starts."""
import re
import subprocess
import sys
import time
from pathlib import Path

import docker

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from test_serve import _browser  # noqa: E402

IMAGE = sys.argv[1] if len(sys.argv) > 1 else "hermes-agent:local"
client = docker.from_env()
made = []
try:
    for i, profiles in enumerate((["coder", "writer"], ["coder"], ["support", "triage", "coder"]), 1):
        c = client.containers.run(IMAGE, ["sleep", "infinity"], name=f"shot-hermes-{i}", detach=True,
                                  environment={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"})
        made.append(c)
        time.sleep(4)
        for p in profiles:
            c.exec_run(["hermes", "profile", "create", p], user="hermes")
            c.exec_run(["/opt/hermes/docker/hermes-slots", "adopt", p], user="hermes")
        c.exec_run(["/command/s6-svc", "-u", "/run/service/gateway-coder"], user="hermes")
    time.sleep(5)
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "serve", "--listen", "127.0.0.1:0", "--interval", "1",
                             "--socket", "/tmp/shot-serve.sock"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    url = re.search(r"(http://\S+/) ", proc.stdout.readline()).group(1)
    token = re.search(r"token \(shown once\): (\S+)", proc.stdout.readline()).group(1)
    time.sleep(3)
    subprocess.run([sys.executable, "-m", "hermesctl", "gateway", "restart", "shot-hermes-2:coder"],
                   cwd=ROOT, capture_output=True)
    driver = _browser()
    driver.get(url + "#token=" + token)
    time.sleep(3)
    driver.execute_script("const f = document.querySelector('#filter'); f.value = 'shot-*'; f.oninput();")
    driver.execute_script("document.querySelector(\"tr[data-target='shot-hermes-1:coder']\").click()")
    time.sleep(2)
    driver.save_screenshot(str(ROOT / "docs" / "serve.png"))
    driver.quit()
    proc.terminate()
finally:
    for c in made:
        c.remove(force=True, v=True)
