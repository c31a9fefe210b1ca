"""`hermesctl serve`'s /metrics as Prometheus sees it: nothing before the first look at the fleet is
in (503, never an empty fleet), `promtool check metrics` clean, a real Prometheus (Debian's)
scraping it with the token as compose/prometheus/prometheus.yml does, and the alert rules of
compose/prometheus/ proven by `promtool test rules`."""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from conftest import IN_CI, ROOT, RUN_ID, ctrl_c, svstat, wait_for

PROJECT = f"hct{RUN_ID}met"  # the server watches only this: other workers' containers are not its business

TOKEN = "metrics-test-token-0123456789abcdef"


def _need(program: str) -> str:
    path = shutil.which(program)
    if path is None:
        if IN_CI:
            pytest.fail(f"{program} is needed: bash scripts/ensure-prometheus.sh")
        pytest.skip(f"no {program}")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _get(url: str, token: str | None = TOKEN) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def _status(url: str, token: str | None = TOKEN) -> int:
    """The status alone: once the fleet is in, /api/events answers 200 with a stream that never ends."""
    req = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=5) as res:
            return res.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _start_serve(tmp_path, port: int) -> subprocess.Popen:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HERMESCTL_SOCKET": str(tmp_path / "run" / "serve.sock")}
    return subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", PROJECT, "serve", "--listen", f"127.0.0.1:{port}",
                             "--token-file", str(token_file), "--interval", "0.5"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def _socket_status(path) -> int | None:
    """The status of GET /api/ps over the unix socket (None: not listening yet)."""
    import http.client
    import socket

    class _UnixConnection(http.client.HTTPConnection):
        def connect(self):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(path))

    if not path.exists():
        return None
    conn = _UnixConnection("localhost")
    try:
        conn.request("GET", "/api/ps")
        response = conn.getresponse()
        if response.status == 200:
            assert '"gateways": [' in response.read().decode()
        return response.status
    except OSError:
        return None
    finally:
        conn.close()


@pytest.fixture
def gateway(containers):
    c = containers.start("met", env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"},
                         labels={"com.docker.compose.project": PROJECT})
    wait_for(lambda: svstat(c, "default")["up"], what="default gateway up")
    return c


def test_metrics_answer_503_until_the_first_look_at_the_fleet_is_in(gateway, tmp_path):
    port = _free_port()
    proc = _start_serve(tmp_path, port)
    try:
        answers = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                status, text = _get(f"http://127.0.0.1:{port}/metrics")
            except OSError:  # not listening yet
                time.sleep(0.01)
                continue
            answers.append(status)
            if status == 200:
                # The first 200 already holds the container's gateway: never an empty fleet.
                assert f'container="{gateway.name}"' in text and "hermes_gateway_up{" in text, text[:2000]
                break
            assert status == 503, (status, text)
            for path in ("/api/ps", "/api/events"):
                assert _status(f"http://127.0.0.1:{port}{path}") in (503, 200), path
            socket_answer = _socket_status(tmp_path / "run" / "serve.sock")
            assert socket_answer in (None, 503, 200), socket_answer
            answers.append(("socket", socket_answer))
            time.sleep(0.01)
        assert answers and answers[-1] == 200, answers[-5:]
        assert 503 in answers and ("socket", 503) in answers, answers  # it was caught starting
    finally:
        ctrl_c(proc)


def test_promtool_finds_the_metrics_clean(gateway, tmp_path):
    promtool = _need("promtool")
    port = _free_port()
    proc = _start_serve(tmp_path, port)
    try:
        wait_for(lambda: _get(f"http://127.0.0.1:{port}/metrics")[0] == 200 if _listening(port) else False,
                 what="/metrics")
        status, text = _get(f"http://127.0.0.1:{port}/metrics")
        assert "# TYPE hermes_gateway_restarts_seen_total counter" in text \
            or "# TYPE hermes_gateway_restarts_seen counter" in text
        lint = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
        assert lint.returncode == 0 and not lint.stdout.strip() and not lint.stderr.strip(), lint
    finally:
        ctrl_c(proc)


def _listening(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_a_real_prometheus_scrapes_serve_with_the_token(gateway, tmp_path):
    prometheus = _need("prometheus")
    port, prom_port = _free_port(), _free_port()
    # compose/prometheus/prometheus.yml, pointed at this server and this token file.
    config = yaml.safe_load((ROOT / "compose" / "prometheus" / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(ROOT / "compose" / "prometheus" / "alerts.yml")]
    job = config["scrape_configs"][0]
    job["authorization"]["credentials_file"] = str(tmp_path / "token")
    job["static_configs"] = [{"targets": [f"127.0.0.1:{port}"]}]
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    proc = _start_serve(tmp_path, port)
    prom = subprocess.Popen([prometheus, f"--config.file={tmp_path / 'prometheus.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def query(expr: str) -> list:
        url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            status, body = _get(url, token=None)
        except OSError:
            return []
        return json.loads(body)["data"]["result"] if status == 200 else []

    try:
        selector = f'hermes_gateway_up{{container="{gateway.name}",profile="default"}}'
        wait_for(lambda: [r["value"][1] for r in query(selector)] == ["1"], timeout=60, what="the scraped gateway")
        up = query('up{job="hermes-fleet"}')
        assert [r["value"][1] for r in up] == ["1"], up
        assert query(f'hermes_gateway_restarts_seen_total{{container="{gateway.name}"}}')
        meta = json.loads(_get(f"http://127.0.0.1:{prom_port}/api/v1/metadata", token=None)[1])["data"]
        kinds = {m["type"] for name in ("hermes_gateway_restarts_seen", "hermes_gateway_restarts_seen_total")
                 for m in meta.get(name, [])}
        assert kinds == {"counter"}, {k: v for k, v in meta.items() if "restarts" in k}
        rules = json.loads(_get(f"http://127.0.0.1:{prom_port}/api/v1/rules", token=None)[1])["data"]["groups"]
        assert {r["name"] for g in rules for r in g["rules"]} >= {"HermesGatewayWantedButDown", "HermesServeStale"}
    finally:
        prom.terminate()
        try:
            prom.wait(timeout=10)
        except subprocess.TimeoutExpired:
            prom.kill()
        ctrl_c(proc)


def test_promtool_proves_the_alert_rules():
    promtool = _need("promtool")
    tests = ROOT / "compose" / "prometheus" / "alerts.test.yml"
    assert tests.is_file(), "compose/prometheus/alerts.test.yml: the alert rules' tests"
    res = subprocess.run([promtool, "test", "rules", str(tests)], capture_output=True, text=True)
    assert res.returncode == 0 and "SUCCESS" in res.stdout, res.stdout + res.stderr
    checked = subprocess.run([promtool, "check", "rules", str(ROOT / "compose" / "prometheus" / "alerts.yml")],
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
