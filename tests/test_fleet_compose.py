"""Issue 4: the shipped compose file, apply/diff with a fleet file, and two Docker endpoints."""
import os
import shutil
import signal
import socket
import subprocess

import pytest

from conftest import IN_CI, ROOT, RUN_ID, hermesctl, second_dockerd, sh, svstat, wait_for, wait_ready


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_shipped_compose_file_brings_up_a_fleet_hermesctl_drives(docker_client, hermes_image, containers):
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        if IN_CI:
            pytest.fail("docker compose v2 is not available (scripts/ensure-compose.sh)")
        pytest.skip("docker compose v2 is not available")
    project = f"hct{RUN_ID}"
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project, "HERMES_IMAGE": hermes_image,
           "HERMES_1_DASHBOARD_PORT": str(free_port()), "HERMES_2_DASHBOARD_PORT": str(free_port())}
    compose = ["docker", "compose", "-f", str(ROOT / "compose" / "compose.yaml")]
    up = subprocess.run(compose + ["up", "-d"], env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    try:
        fleet = docker_client.containers.list(filters={"label": f"com.docker.compose.project={project}"})
        assert len(fleet) == 2
        for c in fleet:
            wait_ready(c)
            mounts = [m for m in c.attrs["Mounts"] if m["Destination"] == "/opt/data"]
            assert mounts and mounts[0]["Type"] == "volume"
            assert c.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
            assert c.attrs["Config"]["Healthcheck"]["Test"][-1] == "/opt/hermes/docker/healthcheck.sh"
        assert len({m["Name"] for c in fleet for m in c.attrs["Mounts"]}) == 2  # one volume each

        ps = hermesctl("--project", project, "ps", "--json")
        assert ps.code == 0, ps
        rows = ps.json()["gateways"]
        assert {r["service"] for r in rows} == {"hermes-1", "hermes-2"}
        # The compose service name works as a target inside the project.
        res = hermesctl("--project", project, "profile", "create", "hermes-1:coder", "--start")
        assert res.code == 0, res
        # Run from the compose directory: the project is the one compose recorded on the containers
        # started from it (labels), although the file's `name:` needs interpolation.
        ps = hermesctl("ps", "--json", cwd=ROOT / "compose", env={"COMPOSE_PROJECT_NAME": ""})
        assert ps.code == 0, ps
        assert {r["container"] for r in ps.json()["gateways"]} == {c.name for c in fleet}
        up_rows = [r for r in ps.json()["gateways"] if r["state"] == "up"]
        assert [(r["service"], r["profile"]) for r in up_rows] == [("hermes-1", "coder")]
        # COMPOSE_PROJECT_NAME, compose's own first choice, is honoured too.
        ps = hermesctl("ps", "--json", cwd=ROOT / "compose", env={"COMPOSE_PROJECT_NAME": project})
        assert {r["container"] for r in ps.json()["gateways"]} == {c.name for c in fleet}
        # A Hermes container outside the project: named as such, not "not a Hermes container".
        outsider = containers.start("outsider")
        res = hermesctl("profile", "create", f"{outsider.name}:coder", cwd=ROOT / "compose",
                        env={"COMPOSE_PROJECT_NAME": ""})
        assert res.code == 4 and f"outside compose project {project!r}" in res.stderr \
            and "no compose project" in res.stderr, res
        assert "not a Hermes container" not in res.stderr
        table = hermesctl("--project", project, "ps")
        assert "SERVICE" in table.stdout and "hermes-2" in table.stdout
    finally:
        subprocess.run(compose + ["down", "-v", "--timeout", "5"], env=env, capture_output=True)


def test_compose_directory_without_its_containers_says_so(tmp_path):
    """A compose file whose project was never started here: an empty selection, and stderr says
    which directory matched nothing (instead of an empty table and silence)."""
    (tmp_path / "compose.yaml").write_text((ROOT / "compose" / "compose.yaml").read_text())
    res = hermesctl("ps", "--json", cwd=tmp_path, env={"COMPOSE_PROJECT_NAME": ""})
    assert res.code == 0 and res.json()["gateways"] == [], res
    assert f"no Hermes container was started by docker compose from compose.yaml in {tmp_path.resolve()}" in res.stderr
    res = hermesctl("--project", f"wtb-none-{RUN_ID}", "ps", cwd=tmp_path)
    assert f"no Hermes container in compose project 'wtb-none-{RUN_ID}'" in res.stderr, res


FLEET = """version: 1
containers:
  {a}:
    profiles:
      coder: {{gateway: running, api_server: true}}
      writer: {{gateway: stopped, api_server: true, env: {{HERMES_NOTE: hello}}}}
  {b}:
    profiles:
      coder: {{gateway: running, api_server: true}}
"""


def test_apply_from_empty_then_no_change_then_one_flip(containers, tmp_path):
    a, b = containers.start("appa", wait=False), containers.start("appb", wait=False)  # side by side
    wait_ready(a)
    wait_ready(b)
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET.format(a=a.name, b=b.name))

    plan = hermesctl("diff", "-f", str(fleet), "--json")
    assert plan.code == 1, plan  # drift, as kubectl diff
    assert plan.json()["schema"] == "hermesctl.diff/v1"
    assert not plan.json()["applied"]
    assert sh(a, "ls /opt/data/profiles").strip() == ""  # diff changed nothing

    res = hermesctl("apply", "-f", str(fleet), "--json")
    assert res.code == 0, res
    changes = res.json()["changes"]
    assert all(ch["ok"] for ch in changes)
    assert {(ch["container"], ch["profile"], ch["action"]) for ch in changes} >= {
        (a.name, "coder", "create"), (a.name, "coder", "start"), (a.name, "writer", "create"),
        (b.name, "coder", "create"), (b.name, "coder", "start")}
    envs = {p: dict(l.split("=", 1) for l in sh(a, f"grep ^API_SERVER /opt/data/profiles/{p}/.env").split())
            for p in ("coder", "writer")}
    assert envs["coder"]["API_SERVER_PORT"] != envs["writer"]["API_SERVER_PORT"]
    assert len(envs["coder"]["API_SERVER_KEY"]) >= 16
    for secret in (envs["coder"]["API_SERVER_KEY"], envs["writer"]["API_SERVER_KEY"]):
        assert secret not in res.stdout and secret not in res.stderr
    assert sh(a, "stat -c '%U %a' /opt/data/profiles/coder/.env").strip() == "hermes 600"
    assert svstat(a, "coder")["up"] and svstat(b, "coder")["up"] and not svstat(a, "writer")["up"]
    port = envs["coder"]["API_SERVER_PORT"]
    health = f"python3 -c \"import urllib.request;print(urllib.request.urlopen('http://127.0.0.1:{port}/health').status)\""
    wait_for(lambda: sh(a, health, check=False).strip() == "200", timeout=60, what="api server health")

    again = hermesctl("apply", "-f", str(fleet), "--json")
    assert again.code == 0 and again.json()["changes"] == [], again
    assert "no changes" in hermesctl("apply", "-f", str(fleet)).stdout

    # Flip one gateway: a's coder (the first one in the file) to stopped.
    fleet.write_text(FLEET.format(a=a.name, b=b.name).replace("coder: {gateway: running", "coder: {gateway: stopped", 1))
    flip = hermesctl("apply", "-f", str(fleet), "--json")
    assert [(ch["container"], ch["profile"], ch["action"]) for ch in flip.json()["changes"]] == [(a.name, "coder", "stop")]
    assert not svstat(a, "coder")["up"]

    # --prune removes what the file does not name; without it nothing is deleted.
    sh(a, "hermes profile create extra >/dev/null")
    assert hermesctl("apply", "-f", str(fleet), "--json").json()["changes"] == []
    pruned = hermesctl("apply", "-f", str(fleet), "--prune")
    assert pruned.code == 0, pruned
    plan, result = pruned.stdout.split("result:")
    assert plan.startswith("plan:") and "extra" in plan and "delete" in plan
    assert "extra" in result and "ok" in result
    assert sh(a, "test -e /opt/data/profiles/extra || echo gone").strip() == "gone"


@pytest.mark.parametrize("body,line,text", [
    ("version: 1\ncontainers:\n  c1:\n    profiles:\n      coder: {gateway: runing}\n", 5, "gateway must be running or stopped"),
    ("version: 1\ncontainers:\n  c1:\n    profiles:\n      ../evil: {}\n", 5, "invalid profile name"),
    ("version: 1\ncontainers:\n  c1:\n    profile:\n      coder: {}\n", 4, "unknown key 'profile'"),
    ("version: 1\ncontainers:\n  c1:\n    profiles:\n      a: {}\n      a: {}\n", 6, "appears twice"),
    ("version: 1\ncontainers:\n  c1:\n    profiles:\n      a: {env: {BAD-KEY: x}}\n", 5, "not an environment variable name"),
    ("version: 1\ncontainers: [\n", 3, "not valid YAML"),
    ("version: 1\ncontainers:\n  c1:\n    endpoint: nowhere\n", 4, "not defined under 'endpoints'"),
])
def test_malformed_fleet_file_is_rejected_pointing_at_the_line(tmp_path, body, line, text):
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(body)
    res = hermesctl("apply", "-f", str(fleet), env={"DOCKER_HOST": "unix:///nonexistent.sock"})
    assert res.code == 2, res
    assert f"{fleet}:{line}:" in res.stderr and text in res.stderr, res
    assert len(res.stderr.strip().splitlines()) == 1


def test_malformed_fleet_file_changes_nothing(containers, tmp_path):
    a = containers.start("badfleet")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"version: 1\ncontainers:\n  {a.name}:\n    profiles:\n      coder: {{gateway: running}}\n"
                     f"      bad: {{gateway: maybe}}\n")
    res = hermesctl("apply", "-f", str(fleet))
    assert res.code == 2 and ":6:" in res.stderr
    assert sh(a, "ls /opt/data/profiles").strip() == ""


@pytest.fixture(scope="module")
def second_daemon(hermes_image):
    """A second dockerd on this machine (conftest.second_dockerd), with the Hermes image."""
    with second_dockerd("d2", hermes_image) as daemon:
        yield daemon


def test_two_endpoints_in_one_ps_and_one_stopped_mid_run(containers, second_daemon, tmp_path):
    url2, client2, proc2 = second_daemon
    local = containers.start("mh-local")
    remote = client2.containers.run(containers.image, ["sleep", "infinity"], detach=True,
                                    name=containers.name("mh-remote"), network_mode="none")
    wait_ready(remote)
    local_url = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(f"version: 1\nendpoints:\n  here: {{host: '{local_url}'}}\n  there: {{host: '{url2}'}}\n"
                     f"containers:\n  {local.name}:\n    endpoint: here\n    profiles:\n      coder: {{gateway: running}}\n"
                     f"  {remote.name}:\n    endpoint: there\n    profiles:\n      coder: {{gateway: running}}\n")
    res = hermesctl("apply", "-f", str(fleet), "--json")
    assert res.code == 0, res
    ps = hermesctl("--fleet", str(fleet), "ps", "--json", f"{containers.name('mh')}*:coder")
    assert ps.code == 0, ps
    seen = {(r["endpoint"], r["container"], r["state"]) for r in ps.json()["gateways"]}
    assert seen == {("here", local.name, "up"), ("there", remote.name, "up")}
    table = hermesctl("--fleet", str(fleet), "ps")
    assert "ENDPOINT" in table.stdout and "there" in table.stdout
    # Every command's rows say which endpoint they came from.
    status = hermesctl("--fleet", str(fleet), "gateway", "status", f"{containers.name('mh')}*:coder")
    assert status.code == 0
    assert {tuple(l.split()[:2]) for l in status.stdout.splitlines()[1:]} == {
        ("here", f"{local.name}:coder"), ("there", f"{remote.name}:coder")}
    logs = hermesctl("--fleet", str(fleet), "logs", "-n", "2", f"{containers.name('mh')}*:coder")
    assert f"here/{local.name}:coder" in logs.stdout and f"there/{remote.name}:coder" in logs.stdout
    doctor = hermesctl("--fleet", str(fleet), "doctor", "--json", f"{containers.name('mh')}*")
    assert {(f["endpoint"], f["container"]) for f in doctor.json()["findings"]} == {
        ("here", local.name), ("there", remote.name)}
    # ENDPOINT/CONTAINER picks one endpoint's container.
    assert hermesctl("--fleet", str(fleet), "gateway", "status", f"there/{remote.name}:coder").code == 0
    wrong = hermesctl("--fleet", str(fleet), "gateway", "status", f"there/{local.name}:coder")
    assert wrong.code == 4 and "no Hermes container matches" in wrong.stderr

    # The second daemon goes away mid-run: the other endpoint still answers, exit says partial.
    proc2.send_signal(signal.SIGTERM)
    proc2.wait(timeout=30)
    ps = hermesctl("--fleet", str(fleet), "ps", "--json")
    assert ps.code == 7, ps
    doc = ps.json()
    assert "there" in [u["endpoint"] for u in doc["unreachable"]]
    # Other test files' containers on this daemon may vanish while ps asks them (parallel
    # workers): only ours must have answered.
    assert not any(u.get("container") == local.name for u in doc["unreachable"]), doc["unreachable"]
    assert {r["container"] for r in doc["gateways"]} >= {local.name}
    assert all(r["endpoint"] == "here" for r in doc["gateways"])
    assert "endpoint there did not answer" in ps.stderr
    status = hermesctl("--fleet", str(fleet), "gateway", "status", f"{local.name}:coder")
    assert status.code == 7 and "up" in status.stdout


def test_docker_contexts_are_honoured(containers, tmp_path):
    c = containers.start("ctx")
    config = tmp_path / "docker-config"
    local_url = os.environ.get("DOCKER_HOST", "unix:///var/run/docker.sock")
    made = subprocess.run(["docker", "--config", str(config), "context", "create", "hct-ctx",
                           "--docker", f"host={local_url}"], capture_output=True, text=True)
    assert made.returncode == 0, made.stderr
    env = {"DOCKER_CONFIG": str(config), "DOCKER_HOST": ""}
    res = hermesctl("--context", "hct-ctx", "ps", "--json", c.name, env=env)
    assert res.code == 0, res
    assert {r["endpoint"] for r in res.json()["gateways"]} == {"hct-ctx"}
    res = hermesctl("ps", "--json", c.name, env={**env, "DOCKER_CONTEXT": "hct-ctx"})
    assert res.code == 0 and {r["endpoint"] for r in res.json()["gateways"]} == {"hct-ctx"}
    res = hermesctl("--context", "no-such-ctx", "ps", env=env)
    assert res.code == 2 and "unknown Docker context 'no-such-ctx'" in res.stderr
