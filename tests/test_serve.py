"""hermesctl serve: /metrics, the live page in a real headless Chromium (Debian's), the token
and same-origin rules, and `ps` answered from the server's socket."""
import http.server
import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import IN_CI, ROOT, RUN_ID, ctrl_c, hermesctl, sh, svstat, wait_for

# The server watches its own compose project only: a server over the whole daemon would exec into
# other workers' containers and skew their exec counts (test_cli_gateways counts them).
PROJECT = f"hct{RUN_ID}srv"


class Server:
    def __init__(self, proc, url, token, socket_path, login_url=None):
        self.proc, self.url, self.token, self.socket_path = proc, url, token, socket_path
        self.login_url = login_url  # the address serve printed for the browser

    @property
    def auth(self):
        return {"Authorization": f"Bearer {self.token}"}

    def get(self, path, headers=None):
        """A read as a script does it: with the token (every read over TCP needs it)."""
        req = urllib.request.Request(self.url + path.lstrip("/"), headers={**self.auth, **(headers or {})})
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read().decode()

    def status(self, path, headers=None, method="GET"):
        """The status of a request sent exactly with `headers` (no token unless given)."""
        req = urllib.request.Request(self.url + path.lstrip("/"), headers=headers or {}, method=method,
                                     data=b'{"target": "x:default"}' if method == "POST" else None)
        try:
            with urllib.request.urlopen(req, timeout=10) as res:
                res.read(1)
                return res.status
        except urllib.error.HTTPError as exc:
            return exc.code

    def post(self, path, body, headers=None):
        req = urllib.request.Request(self.url + path.lstrip("/"), data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json", **(headers or {})})
        try:
            with urllib.request.urlopen(req, timeout=60) as res:
                return res.status, json.loads(res.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())


@pytest.fixture
def served(containers, tmp_path):
    c = containers.start("srv", env={"HERMES_GATEWAY_BOOTSTRAP_STATE": "running"},
                         labels={"com.docker.compose.project": PROJECT})
    wait_for(lambda: svstat(c, "default")["up"], what="default gateway up")
    socket_path = str(tmp_path / "run" / "serve.sock")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HERMESCTL_SOCKET": socket_path}
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", PROJECT, "serve", "--listen", "127.0.0.1:0",
                             "--interval", "0.3"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        url = re.search(r"(http://\S+/) ", first).group(1)
        token = re.search(r"token \(shown once\): (\S+)", second).group(1)
        login = re.search(r"->\s+(\S+)", second).group(1)
        server = Server(proc, url, token, socket_path, login)
        wait_for(lambda: server.status("/api/ps", server.auth) == 200 and c.name in server.get("/api/ps")[1],
                 what="the server sees the container")
        yield c, server, env
    finally:
        ctrl_c(proc)


def _metric(server, name, container):
    _, text = server.get("/metrics")
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and sample.labels.get("container") == container \
                    and sample.labels.get("profile", "default") == "default":
                return sample.value
    return None


def test_metrics_parse_and_follow_a_gateway_kill(served):
    c, server, _ = served
    assert _metric(server, "hermes_gateway_up", c.name) == 1.0
    assert _metric(server, "hermes_container_running", c.name) == 1.0
    _, text = server.get("/metrics")
    assert 'hermes_endpoint_reachable{endpoint="default"} 1.0' in text
    assert "hermes_scrape_duration_seconds" in text
    before = _metric(server, "hermes_gateway_restarts_seen_total", c.name)
    pid = svstat(c, "default")["pid"]
    sh(c, f"kill -9 {pid}")
    # The death shows (up 0) or the restart already has (a new pid counted), whichever comes first.
    # How fast is a figure for a benchmark, not a bound for a test on a loaded 2-core machine.
    wait_for(lambda: _metric(server, "hermes_gateway_up", c.name) == 0.0
             or _metric(server, "hermes_gateway_restarts_seen_total", c.name) != before,
             timeout=5, interval=0.05, what="the kill in /metrics")
    wait_for(lambda: _metric(server, "hermes_gateway_restarts_seen_total", c.name) == before + 1,
             timeout=10, interval=0.1, what="the restart counted")


def test_a_request_without_the_token_cannot_act(served):
    c, server, _ = served
    pid = svstat(c, "default")["pid"]
    status, doc = server.post("/api/gateway/stop", {"target": f"{c.name}:default"})
    assert status == 403 and "token" in doc["error"]
    # The token as a cookie, but from another site: refused too.
    status, _ = server.post("/api/gateway/stop", {"target": f"{c.name}:default"},
                            {"Cookie": f"hermesctl_token={server.token}", "Origin": "http://evil.example"})
    assert status == 403
    time.sleep(1)
    assert svstat(c, "default") ["up"] and svstat(c, "default")["pid"] == pid
    # With it (a script's bearer header), the same request acts.
    status, doc = server.post("/api/gateway/restart", {"target": f"{c.name}:default"},
                              {"Authorization": f"Bearer {server.token}"})
    assert status == 200 and doc["results"][0]["ok"], doc
    assert svstat(c, "default")["pid"] != pid


def test_ps_reads_the_server_and_direct_asks_the_containers(served):
    c, server, env = served
    res = hermesctl("--project", PROJECT, "ps", c.name, env={"HERMESCTL_SOCKET": server.socket_path})
    assert res.code == 0 and "from hermesctl serve" in res.stderr and "default" in res.stdout
    doc = hermesctl("--project", PROJECT, "ps", c.name, "--json", env={"HERMESCTL_SOCKET": server.socket_path}).json()
    assert doc["source"]["kind"] == "serve" and doc["source"]["age_s"] < 5
    assert [g["profile"] for g in doc["gateways"]] == ["default"]
    direct = hermesctl("--project", PROJECT, "ps", c.name, "--direct", env={"HERMESCTL_SOCKET": server.socket_path})
    assert direct.code == 0 and "from hermesctl serve" not in direct.stderr
    # One pipeline (issue 25): the served document is the direct one but for where it came
    # from (and the uptime, which advanced between the two questions). The gateway may still be
    # starting (hermes writes gateway_state.json when it is up): a change reaches serve within
    # moments, so the two agree once it has, not necessarily at the same instant.
    def steady(d: dict) -> dict:
        return {**{k: v for k, v in d.items() if k != "source"},
                "gateways": [{**g, "uptime_s": None} for g in d["gateways"]]}

    def both() -> tuple[dict, dict, bool]:
        asked = hermesctl("--project", PROJECT, "ps", c.name, "--json", "--direct",
                          env={"HERMESCTL_SOCKET": server.socket_path}).json()
        served = hermesctl("--project", PROJECT, "ps", c.name, "--json",
                           env={"HERMESCTL_SOCKET": server.socket_path}).json()
        return steady(served), steady(asked), "source" in served and "source" not in asked
    from conftest import wait_for
    wait_for(lambda: (lambda s, a, sources: s == a and sources)(*both()), timeout=30,
             what="the served ps document equal to the direct one")
    assert os.stat(server.socket_path).st_mode & 0o777 == 0o600


def test_non_loopback_listen_needs_a_token_file():
    res = hermesctl("serve", "--listen", "0.0.0.0:0")
    assert res.code == 2 and "token" in res.stderr


def _browser():
    if not (shutil.which("chromium") and shutil.which("chromedriver")):
        if IN_CI:
            pytest.fail("Debian's chromium and chromium-driver are needed (scripts/ensure-browser.sh)")
        pytest.skip("no chromium")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium")
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1400,900"):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=options)


def _row_pid(driver, target):
    cells = driver.execute_script(
        "const r = document.querySelector(`tr[data-target='${arguments[0]}']`);"
        "return r ? Array.from(r.cells).map(c => c.textContent) : null;", target)
    return None if cells is None else cells[3]


def test_the_page_in_chromium_needs_the_token_is_live_and_acts_with_it(served, tmp_path):
    c, server, env = served
    target = f"{c.name}:default"
    driver = _browser()
    try:
        # Without the token the page is an empty shell: every read over TCP needs it.
        driver.get(server.url)
        wait_for(lambda: "serve" in driver.find_element("id", "mode").text, what="the page asks for the token")
        # ...and says so where the fleet would be, not "loading…" for ever (issue 29).
        wait_for(lambda: "needs the server's token" in driver.find_element("id", "summary").text,
                 what="the token hint in the summary")
        assert driver.execute_script("return document.querySelectorAll('#fleet tbody tr').length") == 0
        # The address serve printed: rows, buttons, and the token leaves the address bar.
        driver.get(server.login_url)
        wait_for(lambda: _row_pid(driver, target) not in (None, "-"), what="the row on the page")
        # The actions a running gateway has: stop and restart, not start (issue 29).
        wait_for(lambda: driver.execute_script(
            f"return [...document.querySelectorAll(`tr[data-target='{target}'] button`)].map(b => b.dataset.verb)"
        ) == ["stop", "restart"], what="buttons with the token")
        assert server.token not in driver.current_url
        pid = _row_pid(driver, target)
        # A restart from the CLI shows on the page by itself.
        assert hermesctl("gateway", "restart", target).code == 0
        wait_for(lambda: _row_pid(driver, target) not in (pid, "-", None), timeout=10, what="the new pid on the page")
        pid = _row_pid(driver, target)
        driver.save_screenshot(str(tmp_path / "page.png"))
        driver.execute_script(f"document.querySelector(`tr[data-target='{target}'] button[data-verb=restart]`).click()")
        wait_for(lambda: _row_pid(driver, target) not in (pid, "-", None), timeout=30, what="restarted from the page")
        assert svstat(c, "default")["up"]
    finally:
        driver.quit()


class _Recorder(http.server.BaseHTTPRequestHandler):
    """What a container (or any local user) could serve on another loopback port: it records
    every request's headers, and its page asks it again with every credential the browser has."""
    seen: list = []
    PAGE = (b"<!doctype html><script>fetch('/probe', {credentials: 'include'}).then(() => "
            b"document.title = 'probed')</script>")

    def do_GET(self):  # noqa: N802
        self.seen.append((self.path, dict(self.headers)))
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(self.PAGE)))
        self.end_headers()
        self.wfile.write(self.PAGE)

    def log_message(self, *args):
        pass


def test_a_page_on_another_loopback_port_sees_no_credential(served):
    c, server, _ = served
    other = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=other.serve_forever, daemon=True).start()
    other_url = f"http://127.0.0.1:{other.server_address[1]}/"
    driver = _browser()
    try:
        driver.get(server.login_url)  # exactly what the operator opens
        wait_for(lambda: driver.execute_script(
            f"return document.querySelectorAll(`tr[data-target='{c.name}:default'] button`).length") == 2,
            what="the page with the token (stop and restart)")
        driver.get(other_url)  # the same tab, then another one: neither carries anything over
        wait_for(lambda: driver.title == "probed", what="the other port's page asked again")
        driver.switch_to.new_window("tab")
        driver.get(other_url + "again")
        wait_for(lambda: len(_Recorder.seen) >= 4, what="four requests on the other port")
        for path, headers in _Recorder.seen:
            assert not {"cookie", "authorization"} & {h.lower() for h in headers}, (path, headers)
            assert server.token not in repr(headers)
        assert driver.execute_script("return document.cookie + sessionStorage.length + localStorage.length") == "00"
    finally:
        driver.quit()
        other.shutdown()


def test_a_host_header_of_another_name_is_refused(served):
    c, server, _ = served
    evil = {"Host": "evil.example", **server.auth}
    for path in ("/", "/metrics", "/api/ps", "/api/events", f"/api/logs?target={c.name}:default", "/api/info"):
        assert server.status(path, evil) == 403, path
    assert server.status("/api/gateway/restart", evil, method="POST") == 403
    port = server.url.rstrip("/").rsplit(":", 1)[1]
    for host in ("evil.example:" + port, "127.0.0.1.evil.example", "localhost.evil.example:" + port, ""):
        assert server.status("/api/ps", {"Host": host, **server.auth}) in (400, 403), host
    # The names it serves: IP literals and localhost (a DNS name needs --allow-host).
    for host in ("127.0.0.1:" + port, "localhost:" + port, "localhost"):
        assert server.status("/api/ps", {"Host": host, **server.auth}) == 200, host


def test_reads_over_tcp_need_the_token_and_the_socket_is_the_operators(served):
    c, server, _ = served
    paths = ("/metrics", "/api/ps", "/api/events", f"/api/logs?target={c.name}:default&n=1", "/api/info")
    for path in paths:
        assert server.status(path) == 401, path
        assert server.status(path, {"Authorization": "Bearer " + "x" * len(server.token)}) == 401, path
    for path in ("/metrics", "/api/ps", f"/api/logs?target={c.name}:default&n=1", "/api/info"):
        assert server.status(path, server.auth) == 200, path
    assert server.status("/") == 200  # the page itself is an empty shell
    assert server.status("/", {"Cookie": f"hermesctl_token={server.token}"}) == 200
    assert server.status("/api/ps", {"Cookie": f"hermesctl_token={server.token}"}) == 401
    # The unix socket (0600, the operator's) answers without the token.
    from hermesctl.serve.client import get_json
    assert c.name in json.dumps(get_json(server.socket_path, "/api/ps"))


def test_compose_serve_is_not_on_the_fleets_network_and_scrapes_with_the_token(tmp_path):
    if not shutil.which("docker") or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        if IN_CI:
            pytest.fail("docker compose is needed (scripts/ensure-compose.sh)")
        pytest.skip("no docker compose")
    work = tmp_path / "compose"
    shutil.copytree(ROOT / "compose", work)
    (work / "hermesctl_token").write_text("t" * 32)
    res = subprocess.run(["docker", "compose", "-f", "compose.yaml", "-f", "serve.yaml", "--profile", "prometheus",
                          "config", "--format", "json"], cwd=work, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    services = json.loads(res.stdout)["services"]
    fleet = [s for s in services.values() if s.get("labels", {}).get("io.hermes-agent.managed") == "true"]
    assert len(fleet) >= 2
    fleet_networks = set().union(*(set(s.get("networks") or {"default": None}) for s in fleet))
    for name in ("hermesctl-serve", "prometheus"):
        assert not set(services[name].get("networks") or {"default": None}) & fleet_networks, name
    command = services["hermesctl-serve"]["command"]
    assert "--token-file" in command and "--allow-host" in command
    import yaml
    scrape = yaml.safe_load((work / "prometheus" / "prometheus.yml").read_text())["scrape_configs"][0]
    assert scrape["authorization"]["credentials_file"] == "/run/secrets/hermesctl_token"
    assert any(s.get("source") == "hermesctl_token" or s == "hermesctl_token"
               for s in services["prometheus"].get("secrets", []))
