"""Issue 27: the README's commands on a real Podman (Debian's 4.3, rootful), through its
Docker-compatible API on a socket of its own and `hermesctl -H unix://…`: one compose fleet of two
containers made by `docker compose` against that socket, shared by every test here (the engine
shown, lifecycle, profiles, logs, events, doctor, usage, serve, apply/diff, backup/restore, and
upgrades to a good and to a never-booting image: rolled back, data kept).

The service gets its own containers.conf (CONTAINERS_CONF) with default ulimits: Podman's own
default nofile (1048576) is above this machine's hard limit, and a container asking for more
than the hard limit does not start. Images are loaded from Docker (`docker save | podman load`,
skipped when Podman already holds the same image id); the derived ones are built by `podman
build --format docker` (its default, OCI, drops HEALTHCHECK). In CI a missing podman fails.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import docker
import pytest

from conftest import IN_CI, ROOT, RUN_ID, hermesctl, sh, svstat, wait_for, wait_ready
from derived_images import BROKEN_MIGRATION, NEXT_VERSION
from test_events import EventsProcess, _watching
from test_readme_compose import free_port

PROJECT = f"hctpod{RUN_ID}"
NEXT = f"hermes-agent:hctpod-next-{RUN_ID}"
BAD = f"hermes-agent:hctpod-bad-{RUN_ID}"
ULIMITS_CONF = '[containers]\ndefault_ulimits = ["nofile=4096:4096", "nproc=4096:4096"]\n'


def _missing(reason: str):
    if IN_CI:
        pytest.fail(f"Podman tests cannot run in CI: {reason}", pytrace=False)
    pytest.skip(reason)


def _podman(*args: str, stdin=None, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run(["podman", *args], stdin=stdin, capture_output=True, text=stdin is None, timeout=300)
    if check and result.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {result.stderr!r}")
    return result


def _load(docker_client, image: str) -> None:
    """Our image into Podman's store, unless it holds that very image already."""
    want = docker_client.images.get(image).id.removeprefix("sha256:")
    have = _podman("image", "inspect", "--format", "{{.Id}}", image, check=False)
    if have.returncode == 0 and have.stdout.strip() == want:
        return
    saved = subprocess.Popen(["docker", "save", image], stdout=subprocess.PIPE)
    loaded = subprocess.run(["podman", "load", "-q"], stdin=saved.stdout, capture_output=True, timeout=600)
    saved.wait()
    assert loaded.returncode == 0 and saved.returncode == 0, loaded.stderr


def _build(tag: str, base: str, extra: str, files: dict[str, str], where: Path) -> None:
    where.mkdir()
    (where / "Dockerfile").write_text(f"FROM {base}\n{extra}")
    for name, text in files.items():
        (where / name).write_text(text)
        (where / name).chmod(0o755)
    _podman("build", "--format", "docker", "-q", "-t", tag, str(where))


class Pod:
    """The Podman service and the compose fleet on it."""

    def __init__(self, url: str, client: docker.DockerClient, compose_dir: Path, env: dict):
        self.url, self.client, self.compose_dir, self.env = url, client, compose_dir, env

    def cli(self, *args: str, **kwargs):
        return hermesctl("-H", self.url, "--project", PROJECT, *args, **kwargs)

    def volumes(self) -> set[str]:
        return {v.name for v in self.client.volumes.list()}

    def container(self, service: str):
        c = self.client.containers.get(f"{PROJECT}-{service}-1")
        c.reload()
        return c


@pytest.fixture(scope="module")
def pod(docker_client, hermes_image):
    if shutil.which("podman") is None:
        _missing("podman is not installed (scripts/ensure-podman.sh)")
    if subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        _missing("docker compose v2 is not available (scripts/ensure-compose.sh)")
    root = Path(tempfile.mkdtemp(prefix=f"hct-pod-{RUN_ID}-"))
    (root / "containers.conf").write_text(ULIMITS_CONF)
    url = f"unix://{root}/podman.sock"
    log = open(root / "service.log", "w")
    service = subprocess.Popen(["podman", "system", "service", "--time=0", url], stdout=log, stderr=subprocess.STDOUT,
                               env={**os.environ, "CONTAINERS_CONF": str(root / "containers.conf")})
    client, compose_env = None, None
    try:
        def answers():
            try:
                c = docker.DockerClient(base_url=url, timeout=60)
                return c if c.ping() else None
            except Exception:  # noqa: BLE001 - not up yet
                return None
        client = wait_for(answers, timeout=60, interval=0.2, what=f"podman system service ({root / 'service.log'})")
        _load(docker_client, hermes_image)
        _build(NEXT, hermes_image, f"LABEL io.hermes-agent.version={NEXT_VERSION}\n", {}, root / "next")
        _build(BAD, hermes_image, "COPY 99-broken-migration /etc/cont-init.d/99-broken-migration\n",
               {"99-broken-migration": BROKEN_MIGRATION}, root / "bad")
        compose_dir = root / "compose"
        shutil.copytree(ROOT / "compose", compose_dir)
        compose_env = {**os.environ, "DOCKER_HOST": url, "COMPOSE_PROJECT_NAME": PROJECT, "HERMES_IMAGE": hermes_image,
                       "HERMES_1_DASHBOARD_PORT": str(free_port()), "HERMES_2_DASHBOARD_PORT": str(free_port())}
        up = subprocess.run(["docker", "compose", "-f", str(compose_dir / "compose.yaml"), "up", "-d"],
                            env=compose_env, capture_output=True, text=True, timeout=300)
        assert up.returncode == 0, up.stderr[-3000:]
        made = Pod(url, client, compose_dir, compose_env)
        for service_name in ("hermes-1", "hermes-2"):
            wait_ready(made.container(service_name))
        yield made
    finally:
        if compose_env is not None:
            subprocess.run(["docker", "compose", "-f", str(root / "compose" / "compose.yaml"), "down", "-v", "-t", "5"],
                           env=compose_env, capture_output=True, timeout=300)
        if client is not None:  # what compose down left: containers an upgrade set aside, helpers
            for c in client.containers.list(all=True, filters={"label": f"com.docker.compose.project={PROJECT}"}):
                c.remove(force=True, v=True)
        for tag in (NEXT, BAD):
            _podman("rmi", "-f", tag, check=False)
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
            service.wait()
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def _data_entries(archive: str) -> list[str]:
    import tarfile
    with tarfile.open(archive) as tar:
        return [m.name.rstrip("/") for m in tar if m.name.startswith("data/") and "/logs/" not in m.name]


def test_the_engine_is_podman_in_ps_and_a_wrong_engine_is_refused(pod):
    res = pod.cli("ps", "--json")
    assert res.code == 0, res
    rows = res.json()["gateways"]
    assert {r["container"] for r in rows} == {f"{PROJECT}-hermes-1-1", f"{PROJECT}-hermes-2-1"}
    assert {r["engine"] for r in rows} == {"podman"}
    wide = pod.cli("ps", "--wide")
    assert wide.code == 0 and wide.stdout.split("\n")[0].split()[:3] == ["ENDPOINT", "ENGINE", "CONTAINER"], wide
    assert all(line.split()[1] == "podman" for line in wide.stdout.strip().split("\n")[1:]), wide
    # Named explicitly: the same answer; the other engine: refused before anything is asked, on
    # the direct ps path (stdlib client) and on the SDK's (any other command).
    assert pod.cli("--engine", "podman", "ps", "--json").json()["gateways"] == rows
    for args in (("ps",), ("doctor",)):
        wrong = pod.cli("--engine", "docker", *args)
        assert wrong.code == 2 and "answers as Podman, not Docker" in wrong.stderr, wrong


def test_lifecycle_profiles_logs_and_events(pod, monkeypatch):
    one, two = pod.container("hermes-1"), pod.container("hermes-2")
    monkeypatch.setenv("DOCKER_HOST", pod.url)  # the events process's endpoint
    events = EventsProcess(f"{PROJECT}-*")
    try:
        wait_for(lambda: _watching(one) and _watching(two), what="the watchers in both containers")
        res = pod.cli("profile", "create", "hermes-1:coder", "--start")
        assert res.code == 0, res
        assert svstat(one, "coder")["up"]
        events.wait("coder up", type="gateway", action="up", container=one.name, profile="coder")
        before = svstat(one, "coder")["pid"]
        res = pod.cli("gateway", "restart", "hermes-*:coder")
        assert res.code == 0 and "restarted" in res.stdout, res
        assert svstat(one, "coder")["pid"] != before
        res = pod.cli("gateway", "stop", "hermes-1:coder")
        assert res.code == 0 and not svstat(one, "coder")["up"], res
        assert pod.cli("gateway", "status", "hermes-1:coder").code == 3
        assert pod.cli("gateway", "start", "hermes-1:coder").code == 0
        events.wait("the stop", type="gateway", action="want-down", container=one.name, profile="coder")
        # A container restart through the engine: Podman's own events reach `events`.
        one.restart(timeout=5)
        events.wait("the container's start", type="container", action="start", container=one.name)
        wait_ready(pod.container("hermes-1"))
        wait_for(lambda: svstat(pod.container("hermes-1"), "coder")["up"], what="coder back after the restart")
        logs = pod.cli("logs", "hermes-1:coder", "-n", "3")
        assert logs.code == 0 and logs.stdout.count(f"{one.name}:coder") == 3, logs
        listed = pod.cli("profile", "list", "--json")
        assert listed.code == 0 and "coder" in listed.stdout, listed
    finally:
        events.stop()


def test_doctor_usage_and_serve(pod, tmp_path):
    doctor = pod.cli("doctor", "--json")
    assert doctor.code == 0, doctor
    usage = pod.cli("usage", "--json")
    assert usage.code == 0, usage
    assert {r["container"] for r in usage.json()["rows"]} >= {f"{PROJECT}-hermes-1-1", f"{PROJECT}-hermes-2-1"}
    socket_path = str(tmp_path / "serve.sock")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HERMESCTL_SOCKET": socket_path}
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "-H", pod.url, "--project", PROJECT, "serve",
                             "--listen", "127.0.0.1:0", "--interval", "0.3"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert "http://" in proc.stdout.readline()
        # `ps` answered by the server carries the engine as a direct one does.
        def served():
            res = hermesctl("-H", pod.url, "--project", PROJECT, "ps", "--json", env={"HERMESCTL_SOCKET": socket_path})
            return res if res.code == 0 and res.json().get("source", {}).get("kind") == "serve" else None
        doc = wait_for(served, timeout=30, what="ps answered by serve").json()
        assert doc["gateways"] and {r["engine"] for r in doc["gateways"]} == {"podman"}, doc
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)


def test_apply_then_diff_converge(pod, tmp_path):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"version: 1\nendpoints:\n  pod: {{host: \"{pod.url}\"}}\ncontainers:\n"
                     f"  {PROJECT}-hermes-2-1:\n    endpoint: pod\n    profiles:\n"
                     "      writer: {gateway: running, env: {HERMES_NOTE: hello}, config: {agent.max_turns: 40}}\n")
    drift = hermesctl("diff", "-f", str(fleet))
    assert drift.code == 1 and "writer" in drift.stdout, drift
    applied = hermesctl("apply", "-f", str(fleet))
    assert applied.code == 0, applied
    assert svstat(pod.container("hermes-2"), "writer")["up"]
    assert hermesctl("diff", "-f", str(fleet)).code == 0


def test_backup_and_restore_running_and_stopped(pod, tmp_path):
    two = pod.container("hermes-2")
    volumes = pod.volumes()
    live = pod.cli("backup", "hermes-2", "-o", str(tmp_path / "live"), "--json")
    assert live.code == 0, live
    [made] = live.json()["backups"]
    sh(two, "echo changed > /opt/data/SOUL.md && touch /opt/data/added-after")
    two.stop(timeout=5)
    # Of a stopped container Podman names the archive's entries otherwise ("/x"): the dialect
    # renames them, so this backup holds the whole tree too.
    stopped = pod.cli("backup", "hermes-2", "-o", str(tmp_path / "stopped"), "--json")
    assert stopped.code == 0, stopped
    [after] = stopped.json()["backups"]
    assert after["consistency"] == "stopped-container", after
    entries = [set(_data_entries(doc["archive"])) for doc in (made, after)]
    assert len(entries[0]) > 20 and "data/added-after" in entries[1] - entries[0], entries
    res = pod.cli("restore", made["archive"], "hermes-2")
    assert res.code == 0, res
    two.start()
    wait_ready(pod.container("hermes-2"))
    two = pod.container("hermes-2")
    assert "changed" not in sh(two, "cat /opt/data/SOUL.md")
    assert sh(two, "ls /opt/data/added-after 2>&1 || true").strip().endswith("No such file or directory")
    assert sh(two, "find /opt/data ! -user hermes | head -5", user="root").strip() == ""
    wait_for(lambda: svstat(two, "writer")["up"], what="writer back after the restore")
    # The helpers (the owners asked in one of the image, the swap) leave no volume behind.
    assert pod.volumes() == volumes


def test_upgrade_to_a_good_image_then_a_never_booting_one_is_rolled_back(pod, tmp_path):
    one = pod.container("hermes-1")
    assert svstat(one, "coder")["up"]
    volumes = pod.volumes()
    res = pod.cli("upgrade", "hermes-1", "--image", NEXT, "--backup-dir", str(tmp_path), "--settle", "2",
                  "--timeout", "60", "--json")
    assert res.code == 0, res
    [outcome] = res.json()["containers"]
    # Podman without systemd never runs the image's healthcheck: the agent's boot gate decides at
    # once, and says so, where waiting for `healthy` would never end.
    assert outcome["result"] == "upgraded" and "engine runs no healthchecks" in outcome["gate"], outcome
    now = pod.container("hermes-1")
    assert now.labels["io.hermes-agent.version"] == NEXT_VERSION
    assert {u["Name"] for u in now.attrs["HostConfig"]["Ulimits"]} == {"RLIMIT_NOFILE", "RLIMIT_NPROC"}
    assert "container=podman" in now.attrs["Config"]["Env"] and "PUID=10000" in now.attrs["Config"]["Env"]
    assert [m["Name"] for m in now.attrs["Mounts"] if m["Destination"] == "/opt/data"] == [f"{PROJECT}_hermes-1-data"]
    assert svstat(now, "coder")["up"]
    started_at = now.attrs["State"]["StartedAt"]

    res = pod.cli("upgrade", "hermes-1", "--image", BAD, "--backup-dir", str(tmp_path), "--settle", "2",
                  "--timeout", "60", "--json")
    assert res.code == 1, res
    [outcome] = res.json()["containers"]
    # compose's restart policy may have restarted it once before the gate looked again
    assert outcome["result"] == "rolled back" and outcome["detail"].startswith(
        ("exited with code 3", "keeps restarting")) and "engine runs no healthchecks" in outcome["gate"], outcome
    assert {"profiles/coder/gateway_state.json", "profiles/coder/state.db-wal"} <= set(outcome["changed_files_restored"]), outcome
    back = pod.container("hermes-1")
    assert back.attrs["Config"]["Image"].endswith(NEXT.split("/")[-1]) and back.status == "running"
    state = json.loads(sh(back, "cat /opt/data/profiles/coder/gateway_state.json"))
    assert state["desired_state"] == "running"
    assert "junk" not in sh(back, "cat /opt/data/profiles/coder/state.db-wal 2>/dev/null || true")
    # Podman's archives give every entry root's ids: the rollback gave hermes its files back.
    assert sh(back, "find /opt/data ! -user hermes | head -5", user="root").strip() == ""
    wait_for(lambda: svstat(pod.container("hermes-1"), "coder")["up"], what="coder up after the rollback")
    # The same container as before the bad upgrade, started again (its gateway may well get the
    # same pid: a fresh boot in its own pid namespace runs the same steps).
    assert back.id == now.id and back.attrs["State"]["StartedAt"] != started_at
    assert not [c.name for c in pod.client.containers.list(all=True) if c.name.endswith("-pre-upgrade")]
    assert pod.volumes() == volumes
