"""Issue 25: no false page, proven with the real pipeline. A real container, `hermesctl serve`,
Debian's `prometheus` evaluating the shipped rules (compose/prometheus/alerts.yml) and Debian's
`prometheus-alertmanager` routing them to a webhook receiver on the loopback, as
compose/serve.yaml wires them. Only the rules' `for:` durations are shortened (a sixth: 1m → 10s,
2m → 20s) so the test waits seconds; their expressions are the shipped ones.

Operator restarts and a gateway stopped on purpose never page; a real crash loop (three kill -9
within a minute) pages HermesGatewayCrashLooping, and once the loop has aged out (a minute with
no new death) the page is resolved: a held crash-loop verdict would keep paging. `ps` is asked
the same question at both moments (restarts: up, no death; kills: crash-loop), which
test_faults.py did on a container of its own."""
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from conftest import ROOT, RUN_ID, ctrl_c, hermesctl, sh, svstat, wait_for
from test_serve_metrics import TOKEN, _free_port, _get, _need

PROJECT = f"hct{RUN_ID}alert"  # the server watches only this: another worker's gateways never page here
SCALE = 6  # the rules' `for:` divided by this


def _start_serve(tmp_path, port: int) -> subprocess.Popen:
    (tmp_path / "token").write_text(TOKEN)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HERMESCTL_SOCKET": str(tmp_path / "run" / "serve.sock")}
    return subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", PROJECT, "serve", "--listen",
                             f"127.0.0.1:{port}", "--token-file", str(tmp_path / "token"), "--interval", "0.5"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


class Pager:
    """The webhook receiver: every alert Alertmanager sends, as (status, alertname, labels)."""

    def __init__(self):
        self.received: list[tuple[str, str, dict]] = []
        pager = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                for alert in body.get("alerts", []):
                    pager.received.append((alert["status"], alert["labels"].get("alertname"), alert["labels"]))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def pages(self, status: str = "firing") -> list[str]:
        return [f"{name} {labels.get('container')}:{labels.get('profile')}"
                for s, name, labels in self.received if s == status]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


def _shortened_rules(tmp_path) -> str:
    text = (ROOT / "compose" / "prometheus" / "alerts.yml").read_text()

    def shorter(m: re.Match) -> str:
        seconds = int(m.group(2)) * {"s": 1, "m": 60, "h": 3600}[m.group(3)]
        return f"{m.group(1)} {max(1, seconds // SCALE)}s"
    path = tmp_path / "alerts.yml"
    path.write_text(re.sub(r"(?m)^(\s+for:) (\d+)([smh])$", shorter, text))
    assert "for: 10s" in path.read_text() and "for: 20s" in path.read_text()
    return str(path)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@pytest.fixture
def pipeline(containers, tmp_path):
    prometheus, alertmanager = _need("prometheus"), _need("prometheus-alertmanager")
    c = containers.start("page", labels={"com.docker.compose.project": PROJECT})
    sh(c, "hermes profile create coder >/dev/null")
    assert hermesctl("gateway", "start", f"{c.name}:coder").code == 0
    pager = Pager()
    serve_port, prom_port, am_port, am_cluster = _free_port(), _free_port(), _free_port(), _free_port()
    # compose/alertmanager/alertmanager.yml, pointed at the pager, without waiting to group.
    am_config = yaml.safe_load((ROOT / "compose" / "alertmanager" / "alertmanager.yml").read_text())
    am_config["route"].update(group_wait="0s", group_interval="1s", repeat_interval="1h")
    am_config["receivers"][0]["webhook_configs"][0]["url"] = f"http://127.0.0.1:{pager.port}/hermes"
    (tmp_path / "alertmanager.yml").write_text(yaml.safe_dump(am_config))
    # compose/prometheus/prometheus.yml, pointed at this server, this token and this Alertmanager.
    config = yaml.safe_load((ROOT / "compose" / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [_shortened_rules(tmp_path)]
    config["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{am_port}"]}]
    job = config["scrape_configs"][0]
    job["authorization"]["credentials_file"] = str(tmp_path / "token")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{serve_port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    procs = [_start_serve(tmp_path, serve_port)]
    try:
        procs.append(subprocess.Popen(
            [alertmanager, f"--config.file={tmp_path / 'alertmanager.yml'}", f"--storage.path={tmp_path / 'am'}",
             f"--web.listen-address=127.0.0.1:{am_port}", f"--cluster.listen-address=127.0.0.1:{am_cluster}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        procs.append(subprocess.Popen(
            [prometheus, f"--config.file={tmp_path / 'prometheus.yml'}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{prom_port}"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))

        def query(expr: str) -> list:
            url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
            try:
                status, body = _get(url, token=None)
            except OSError:
                return []
            return json.loads(body)["data"]["result"] if status == 200 else []

        coder = f'hermes_gateway_up{{container="{c.name}",profile="coder"}}'
        wait_for(lambda: [r["value"][1] for r in query(coder)] == ["1"], timeout=60, what="coder scraped")
        wait_for(lambda: _get(f"http://127.0.0.1:{am_port}/-/ready", token=None)[0] == 200, timeout=30,
                 what="alertmanager ready")
        yield c, pager, query
    finally:
        for proc in procs[1:]:
            _stop(proc)
        ctrl_c(procs[0])
        pager.close()


def _quiet_for(pager: Pager, seconds: float) -> None:
    """Long enough for any rule to have fired and been sent (for + evaluation + dispatch)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert pager.received == [], pager.received
        time.sleep(0.5)


def test_a_real_crash_loop_pages_and_planned_operations_never_do(pipeline):
    c, pager, query = pipeline
    target = f"{c.name}:coder"
    # Operator restarts and a stop on purpose: planned, never a page.
    for _ in range(3):
        assert hermesctl("gateway", "restart", target).code == 0
    # `ps` reads the same verdict (one truth): three restarts are no death, the gateway is up.
    res = hermesctl("ps", target, "--json")
    assert res.code == 0, res
    row = res.json()["gateways"][0]
    assert row["state"] == "up" and not row["crash_looping"] and row["deaths_recent"] == 0, row
    assert hermesctl("gateway", "status", target).code == 0
    assert hermesctl("gateway", "stop", target).code == 0
    _quiet_for(pager, 25)  # longer than any rule's `for:` here
    assert hermesctl("gateway", "start", target).code == 0
    _quiet_for(pager, 5)  # a start pages nothing; and a death within a second of it is still its own
    # Three unplanned deaths within a minute: a crash loop, paged.
    for _ in range(3):
        # The pid of a gateway that is up (s6-svstat says -1 for one that is down, and `kill -9 -1`
        # would end every process of hermes, its supervisors included).
        pid = wait_for(lambda: (lambda st: st["up"] and st["pid"] > 1 and st["pid"])(svstat(c, "coder")),
                       what="coder up")
        sh(c, f"kill -9 {pid}")
        wait_for(lambda: (lambda st: st["up"] and st["pid"] != pid)(svstat(c, "coder")), what="s6 restarts it")
    killed = time.monotonic()
    row = hermesctl("ps", target, "--json").json()["gateways"][0]
    assert row["deaths_recent"] >= 3 and row["crash_looping"], row  # real deaths count, in `ps` too
    help_text = " ".join(hermesctl("ps", "--help").stdout.split())
    assert "3 or more unplanned deaths in the last 60 s" in help_text, help_text
    try:
        wait_for(lambda: f"HermesGatewayCrashLooping {target}" in pager.pages(), timeout=40, what="the page")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; crash_looping: {query('hermes_gateway_crash_looping')}; "
                             f"ALERTS: {query('ALERTS')}; pager: {pager.received}") from None
    assert set(pager.pages()) == {f"HermesGatewayCrashLooping {target}"}, pager.received
    # A minute without a new death: the loop is over, and the page is resolved.
    wait_for(lambda: f"HermesGatewayCrashLooping {target}" in pager.pages("resolved"), timeout=120,
             what="the page resolved once the deaths aged out")
    assert time.monotonic() - killed >= 40  # not before the minute the deaths count for
    assert set(pager.pages()) == {f"HermesGatewayCrashLooping {target}"}, pager.received
