"""Issue 17: `hermesctl serve`'s usage metrics against real containers: kept current
incrementally (new and still-open sessions), equal to `hermesctl usage` over all time,
promtool-clean, scraped by a real Prometheus (Debian's) whose budget alert fires, and the
alert rules' own unit tests (`promtool test rules`)."""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import IN_CI, ROOT, RUN_ID, ctrl_c, hermesctl, wait_for
from usage_seed import VENV_PYTHON, seed

PROMETHEUS_TOOLS = shutil.which("promtool") and shutil.which("prometheus")
needs_prometheus = pytest.mark.skipif(not PROMETHEUS_TOOLS and not IN_CI,
                                      reason="Debian's prometheus package (scripts/ensure-prometheus.sh)")


def test_alert_rules_pass_promtool():
    if not PROMETHEUS_TOOLS:
        pytest.fail("promtool missing: run scripts/ensure-prometheus.sh") if IN_CI else pytest.skip("no promtool")
    checked = subprocess.run(["promtool", "check", "rules", "compose/prometheus/usage-alerts.yml"], cwd=ROOT,
                             capture_output=True, text=True)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    tested = subprocess.run(["promtool", "test", "rules", "usage-alerts.test.yml"], cwd=ROOT / "tests" / "prometheus",
                            capture_output=True, text=True)
    assert tested.returncode == 0 and "SUCCESS" in tested.stdout, tested.stdout + tested.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Served:
    def __init__(self, url: str, token: str):
        self.url, self.token = url, token

    def metrics_text(self) -> str:
        req = urllib.request.Request(self.url + "metrics", headers={"Authorization": f"Bearer {self.token}"})
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.read().decode()

    def samples(self) -> dict:
        """(name, frozenset(labels)) -> value; nothing while serve answers 503 (its first look)."""
        found = {}
        try:
            text = self.metrics_text()
        except urllib.error.HTTPError as exc:
            if exc.code == 503:
                return found
            raise
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                found[(s.name, frozenset(s.labels.items()))] = s.value
        return found


@pytest.fixture
def usage_served(containers, tmp_path):
    project = f"hct{RUN_ID}usage"
    c = containers.start("usrv", labels={"com.docker.compose.project": project})
    assert hermesctl("profile", "create", f"{c.name}:coder").code == 0
    seed(c, "/opt/data/state.db", 1500, 21)
    seed(c, "/opt/data/profiles/coder/state.db", 300, 22)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"version: 1\ncontainers:\n  {c.name}:\n    budget: {{daily_usd: 100000}}\n    profiles:\n"
                     f"      coder: {{budget: {{daily_usd: 0.01, hourly_usd: 1000}}}}\n")
    token = tmp_path / "token"
    token.write_text("usage-test-token-0123456789abcdef\n")
    token.chmod(0o600)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HERMESCTL_SOCKET": str(tmp_path / "run" / "serve.sock")}
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", project, "--fleet", str(fleet),
                             "serve", "--listen", "127.0.0.1:0", "--usage-interval", "0.5",
                             "--token-file", str(token)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        url = re.search(r"(http://\S+/) ", proc.stdout.readline()).group(1)
        yield c, Served(url, token.read_text().strip()), token
    finally:
        ctrl_c(proc)


def _labels(c, profile: str, **more) -> frozenset:
    return frozenset({"endpoint": "default", "container": c.name, "profile": profile, **more}.items())


def _all_time(c) -> dict:
    res = hermesctl("usage", c.name, "--since", "1970-01-01", "--json")
    assert res.code == 0, res
    return {p["profile"]: p for p in res.json()["profiles"]}


def _mismatches(c, served: Served) -> list:
    """Where a counter serve exports differs from `hermesctl usage` over all time (a full read)."""
    samples, usage, found = served.samples(), _all_time(c), []

    def same(name, labels, want, tolerance=0.0):
        got = samples.get((name, labels))
        if got is None or abs(got - want) > tolerance:
            found.append((name, dict(labels), got, want))
    for profile, row in usage.items():
        same("hermes_sessions_total", _labels(c, profile), row["sessions"])
        same("hermes_sessions_active", _labels(c, profile), row["active"])
        for model, m in row["models"].items():
            for kind in ("input", "output", "cache_read", "cache_write", "reasoning"):
                same("hermes_tokens_total", _labels(c, profile, model=model, kind=kind), m[f"{kind}_tokens"])
            same("hermes_cost_usd_total", _labels(c, profile, model=model, kind="estimated"), m["estimated_usd"],
                 1e-6 * max(1, m["estimated_usd"]))
    return found


def _equal_to_usage(c, served: Served, what: str) -> None:
    last = []

    def check():
        last[:] = _mismatches(c, served)
        return not last
    try:
        wait_for(check, timeout=30, what=what)
    except AssertionError:
        raise AssertionError(f"{what}: {last[:5]}") from None


# New sessions, and the open sessions of before: one grows (with a message), one ends.
GROW = r"""
import sqlite3, sys, time
c = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=5)
open_ids = [r[0] for r in c.execute("select id from sessions where ended_at is null order by id limit 2")]
c.execute("begin immediate")
c.execute("update sessions set input_tokens = input_tokens + 12345, estimated_cost_usd = estimated_cost_usd + 2.5 "
          "where id = ?", (open_ids[0],))
c.execute("insert into messages (session_id, role, content, timestamp) values (?, 'assistant', 'more', ?)",
          (open_ids[0], time.time()))
c.execute("update sessions set ended_at = ?, output_tokens = output_tokens + 777 where id = ?", (time.time(), open_ids[1]))
c.execute("commit")
print(open_ids)
"""


def test_serve_usage_metrics_are_incremental_and_equal_usage(usage_served):
    c, served, _ = usage_served
    wait_for(lambda: ("hermes_sessions_total", _labels(c, "coder")) in served.samples(), timeout=60,
             what="serve's usage counters")
    _equal_to_usage(c, served, "counters equal to hermesctl usage")
    before = served.samples()[("hermes_sessions_total", _labels(c, "coder"))]
    seed(c, "/opt/data/profiles/coder/state.db", 40, 23)          # 40 new sessions
    grown = c.exec_run([VENV_PYTHON, "-c", GROW, "/opt/data/profiles/coder/state.db"], user="hermes")
    assert grown.exit_code == 0, grown.output.decode()
    wait_for(lambda: served.samples().get(("hermes_sessions_total", _labels(c, "coder"))) == before + 40,
             timeout=30, what="the new sessions counted")
    _equal_to_usage(c, served, "counters equal after the changes")
    samples = served.samples()
    assert samples[("hermes_budget_daily_usd", frozenset({"container": c.name, "profile": "coder"}.items()))] == 0.01
    assert samples[("hermes_budget_daily_usd", frozenset({"container": c.name, "profile": ""}.items()))] == 100000
    assert ("hermes_usage_watch_cpu_seconds_total", frozenset({"endpoint": "default", "container": c.name}.items())) in samples
    assert samples[("hermes_last_activity_timestamp_seconds", _labels(c, "coder"))] > time.time() - 7200


def test_usage_metrics_pass_promtool_check_metrics(usage_served):
    c, served, _ = usage_served
    if not PROMETHEUS_TOOLS:
        pytest.fail("promtool missing") if IN_CI else pytest.skip("no promtool")
    wait_for(lambda: ("hermes_sessions_total", _labels(c, "coder")) in served.samples(), timeout=60,
             what="serve's usage counters")
    text = served.metrics_text()
    checked = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    problems = [line for line in (checked.stdout + checked.stderr).splitlines()
                if re.search(r"hermes_(tokens|cost_usd|api_calls|sessions|last_activity|usage_|budget_)", line)]
    assert problems == [], problems
    assert "# TYPE hermes_tokens_total counter" in text and "# TYPE hermes_sessions_active gauge" in text


def _prometheus_query(base: str, expr: str) -> list:
    with urllib.request.urlopen(f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=10) as res:
        return json.loads(res.read())["data"]["result"]


@needs_prometheus
def test_a_real_prometheus_scrapes_serve_and_the_budget_alert_fires(usage_served, tmp_path):
    c, served, token = usage_served
    wait_for(lambda: ("hermes_sessions_total", _labels(c, "coder")) in served.samples(), timeout=60,
             what="serve's usage counters")
    port = _free_port()
    target = urllib.parse.urlparse(served.url).netloc
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
rule_files: [{ROOT / 'compose' / 'prometheus' / 'usage-alerts.yml'}]
scrape_configs:
  - job_name: hermes-fleet
    authorization: {{credentials_file: {token}}}
    static_configs: [{{targets: ["{target}"]}}]
""")
    proc = subprocess.Popen(["prometheus", f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    base = f"http://127.0.0.1:{port}"
    try:
        expected = served.samples()[("hermes_sessions_total", _labels(c, "coder"))]

        def scraped():
            try:
                result = _prometheus_query(base, f'hermes_sessions_total{{container="{c.name}",profile="coder"}}')
            except OSError:
                return None
            return result and float(result[0]["value"][1]) == expected
        wait_for(scraped, timeout=60, what="Prometheus to scrape serve")
        time.sleep(3)  # a few samples before the spend
        seed(c, "/opt/data/profiles/coder/state.db", 30, 24)  # new sessions: spend goes up

        def alert():
            found = _prometheus_query(base, f'ALERTS{{alertname="HermesSpendOverDailyBudget",container="{c.name}"}}')
            return [a["metric"] for a in found if a["metric"].get("alertstate") == "firing"]
        firing = wait_for(alert, timeout=60, what="the daily budget alert")
        assert [a["profile"] for a in firing] == ["coder"]  # the container's own budget is far away
        up = _prometheus_query(base, 'up{job="hermes-fleet"}')
        assert up and up[0]["value"][1] == "1"
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
