"""A fleet on one host, short form (issue 18): HERMESCTL_SCALE_CONTAINERS containers (20 by
default; `benchmarks/fleet_scale.py` runs 200) answer `ps`, `events`, `serve` (its page's event
stream and /metrics included) and `gateway restart '*:default'`, with one `watch` stream per
container and none left behind once the commands end. Twenty is a fleet for every one of these
proofs; each container more costs the CPU-bound suite about a second.

One fleet for the whole module, as cheap as it gets: `sleep infinity` containers whose hermes
program is a stand-in (a `sleep`, bind-mounted over the venv's `hermes`), so that the gateways
cost nothing; every command runs for real against them (s6, the agent, the Docker API)."""
import json
import os
import re
import signal
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from prometheus_client.parser import text_string_to_metric_families

from conftest import RUN_ID, ROOT, hermesctl, wait_for, wait_ready

SIZE = int(os.environ.get("HERMESCTL_SCALE_CONTAINERS", "20"))
PROJECT = f"hct-{RUN_ID}-scale"
STAND_IN_GATEWAY = "#!/bin/sh\n# a gateway that costs nothing: what hermesctl and s6 see is a process that stays up\nexec sleep 2147483647\n"
WATCHERS = "ps -eo args | grep -c '^/opt/hermes/.venv/bin/python -IS /opt/hermes/docker/hermes-ctl-agent watch' || true"


@pytest.fixture(scope="module")
def fleet(docker_client, hermes_image, tmp_path_factory):
    stub = tmp_path_factory.mktemp("gateway") / "hermes"
    stub.write_text(STAND_IN_GATEWAY)
    stub.chmod(0o755)

    def start(i: int):
        return docker_client.containers.run(
            hermes_image, ["sleep", "infinity"], name=f"{PROJECT}-{i:03d}", detach=True,
            labels={"com.docker.compose.project": PROJECT},
            volumes={str(stub): {"bind": "/opt/hermes/.venv/bin/hermes", "mode": "ro"}})

    started = []
    try:
        with ThreadPoolExecutor(max_workers=6) as pool:
            for c in pool.map(start, range(SIZE)):
                started.append(c)
            list(pool.map(lambda c: wait_ready(c, timeout=300), started))
        yield started
    finally:
        with ThreadPoolExecutor(max_workers=6) as pool:
            list(pool.map(lambda c: c.remove(force=True, v=True), started))


def _watchers(containers) -> dict[str, int]:
    with ThreadPoolExecutor(max_workers=6) as pool:
        counts = pool.map(lambda c: int(c.exec_run(["sh", "-c", WATCHERS]).output.decode().strip() or 0), containers)
    return dict(zip((c.name for c in containers), counts))


def _rows(doc: dict) -> dict[str, str]:
    return {g["target"]: g["state"] for g in doc["gateways"]}


def test_ps_answers_for_the_whole_fleet(fleet):
    res = hermesctl("--project", PROJECT, "ps", "--json", "--direct")
    assert res.code == 0, res
    doc = res.json()
    assert _rows(doc) == {f"{c.name}:default": "down" for c in fleet}
    assert doc["unreachable"] == []


def test_serve_events_and_restart_at_scale_one_stream_per_container_none_left(fleet, docker_client, tmp_path):
    socket_path = str(tmp_path / "serve.sock")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HERMESCTL_SOCKET": socket_path}
    serve_err = open(tmp_path / "serve.stderr", "w+")  # a file: a pipe nobody reads could fill and block serve
    serve = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", PROJECT, "serve", "--listen",
                              "127.0.0.1:0", "--interval", "1"], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=serve_err, text=True)
    events = None
    try:
        url = re.search(r"(http://\S+/) ", serve.stdout.readline()).group(1)
        token = re.search(r"token \(shown once\): (\S+)", serve.stdout.readline()).group(1)

        def get(path: str, timeout: float = 10):
            request = urllib.request.Request(url + path, headers={"Authorization": f"Bearer {token}"})
            return urllib.request.urlopen(request, timeout=timeout)

        def served_rows() -> dict:
            try:
                with get("api/ps") as res:
                    return _rows(json.loads(res.read()))
            except urllib.error.HTTPError as exc:  # 503 until its first look is in
                assert exc.code == 503, exc
                return {}
        wait_for(lambda: len(served_rows()) == SIZE, timeout=120, what=f"serve sees {SIZE} containers")

        # The page's live stream open beside it: still one watch stream per container.
        page = get("api/events", timeout=30)
        assert page.readline().startswith(b"event: state")
        events = subprocess.Popen([sys.executable, "-m", "hermesctl", "--project", PROJECT, "events", "--json"],
                                  cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        lines: list[dict] = []
        reader = threading.Thread(target=lambda: lines.extend(json.loads(line) for line in events.stdout), daemon=True)
        reader.start()
        # serve and events each hold one stream per container; the page and ps add none.
        wait_for(lambda: set(_watchers(fleet).values()) == {2}, timeout=120, what="two watchers per container")

        # A Hermes container of another project comes and goes: not this fleet's, not reported.
        docker_client.containers.run(fleet[0].image.id, ["true"], name=f"{PROJECT}x-other", remove=True,
                                     labels={"com.docker.compose.project": f"{PROJECT}x"})
        restart = hermesctl("--project", PROJECT, "gateway", "restart", "*:default", "--json")
        assert restart.code == 0, restart
        results = restart.json()["results"]
        assert sorted(r["target"] for r in results if r["ok"]) == sorted(f"{c.name}:default" for c in fleet)

        # events saw every gateway come up; serve's state agrees, and so does `ps` through it.
        wait_for(lambda: {e["container"] for e in list(lines) if e["type"] == "gateway" and e["action"] == "up"}
                 == {c.name for c in fleet}, timeout=60, what="an `up` event from every container")
        wait_for(lambda: set(served_rows().values()) == {"up"}, timeout=60, what="serve: every gateway up")
        assert {e["container"] for e in list(lines) if e["type"] == "container"} <= {c.name for c in fleet}
        served = hermesctl("--project", PROJECT, "ps", "--json", env={"HERMESCTL_SOCKET": socket_path})
        assert served.code == 0 and served.json()["source"]["kind"] == "serve", served
        assert set(_rows(served.json()).values()) == {"up"} and len(served.json()["gateways"]) == SIZE
        # `gateway status` through serve prints the direct answer (real rows: state and pid; an
        # uptime may tick between the two runs).
        status = {how: hermesctl("--project", PROJECT, "gateway", "status", "*:default", *how,
                                 env={"HERMESCTL_SOCKET": socket_path}) for how in ((), ("--direct",))}
        assert "from hermesctl serve" in status[()].stderr and "from hermesctl" not in status[("--direct",)].stderr
        table = {how: (res.code, [line.split()[:3] for line in res.stdout.splitlines()]) for how, res in status.items()}
        assert table[()] == table[("--direct",)] and table[()][0] == 0 and len(table[()][1]) == SIZE + 1, status

        with get("metrics") as res:
            families = {f.name: f for f in text_string_to_metric_families(res.read().decode())}
        up = [s for s in families["hermes_gateway_up"].samples if s.labels["container"].startswith(PROJECT)]
        assert len(up) == SIZE and all(s.value == 1 for s in up)
        # Its speed is a benchmark figure (benchmarks/fleet_scale.py), not a timed assertion.
        assert families["hermes_scrape_duration_seconds"].samples[0].value > 0
        # A reopened stream's old watcher ends at its EOF a moment after the new one started.
        wait_for(lambda: set(_watchers(fleet).values()) == {2}, timeout=30, what="still two watchers per container")
        page.close()
    finally:
        for proc in (events, serve):
            if proc is not None:
                proc.send_signal(signal.SIGINT)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
    serve_err.seek(0)
    assert events.returncode == 130 and serve.returncode in (0, 130), serve_err.read()[-3000:]
    # Their streams' watchers end with them (the stdin lease): none left in any container.
    wait_for(lambda: set(_watchers(fleet).values()) == {0}, timeout=30, what="no watcher left behind")
    stop = hermesctl("--project", PROJECT, "gateway", "stop", "*:default")
    assert stop.code == 0, stop
