"""Issue 8, point 3: hermesctl upgrade on a compose fleet and on a plain container."""
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import IN_CI, QUICK_HEALTH, ROOT, RUN_ID, hermesctl, sh, svstat, wait_for, wait_ready
from derived_images import NEXT_VERSION, build_bad, build_never_healthy, build_next, build_unhealthy

NEXT = f"hermes-agent:wtc-next-{RUN_ID}"
BAD = f"hermes-agent:wtc-bad-{RUN_ID}"
UNHEALTHY = f"hermes-agent:wtc-unhealthy-{RUN_ID}"
NEVER_HEALTHY = f"hermes-agent:wtc-neverhealthy-{RUN_ID}"

@pytest.fixture(scope="module")
def images(docker_client, hermes_image):
    build_next(docker_client, NEXT, hermes_image)
    build_bad(docker_client, BAD, hermes_image)
    build_unhealthy(docker_client, UNHEALTHY, hermes_image)
    build_never_healthy(docker_client, NEVER_HEALTHY, hermes_image)
    yield hermes_image, NEXT, BAD
    for tag in (NEXT, BAD, UNHEALTHY, NEVER_HEALTHY):
        docker_client.images.remove(tag, force=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def compose_fleet(docker_client, images, request):
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        if IN_CI:
            pytest.fail("docker compose v2 is not available (scripts/ensure-compose.sh)")
        pytest.skip("docker compose v2 is not available")
    project = f"hctc{RUN_ID}{request.node.name[5:9].replace('_', '')}"
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project, "HERMES_IMAGE": images[0],
           "HERMES_1_DASHBOARD_PORT": str(_free_port()), "HERMES_2_DASHBOARD_PORT": str(_free_port()),
           "HERMES_HEALTH_INTERVAL": "2s"}  # upgrade waits for `healthy`: let Docker check often
    compose = ["docker", "compose", "-f", str(ROOT / "compose" / "compose.yaml")]
    up = subprocess.run(compose + ["up", "-d"], env=env, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    try:
        fleet = {c.labels["com.docker.compose.service"]: c for c in
                 docker_client.containers.list(filters={"label": f"com.docker.compose.project={project}"})}
        for c in fleet.values():
            wait_ready(c)
        yield project, fleet, compose, env
    finally:
        subprocess.run(compose + ["down", "-v", "--timeout", "5"], env=env, capture_output=True)
        for c in docker_client.containers.list(all=True, filters={"name": project}):
            c.remove(force=True)


def _container(client, name):
    c = client.containers.get(name)
    c.reload()
    return c


def _settings(c) -> dict:
    """What an upgrade must keep."""
    a = c.attrs
    return {"volumes": sorted((m.get("Name"), m["Destination"]) for m in a["Mounts"]),
            "ports": a["HostConfig"]["PortBindings"], "restart": a["HostConfig"]["RestartPolicy"],
            "env": sorted(e for e in a["Config"]["Env"] if e.startswith(("PUID", "PGID", "HERMES_DASHBOARD", "S6_"))),
            "labels": {k: v for k, v in a["Config"]["Labels"].items() if k.startswith("com.docker.compose.")
                       and k != "com.docker.compose.image"},
            "healthcheck": a["Config"]["Healthcheck"]["Test"], "hostname": a["Config"]["Hostname"],
            "networks": {n: sorted(x for x in s["Aliases"] or [] if x != c.id[:12])
                         for n, s in a["NetworkSettings"]["Networks"].items()}}


def test_upgrade_rolls_through_a_compose_fleet(docker_client, compose_fleet, images, tmp_path):
    project, fleet, compose, env = compose_fleet
    old, new, _ = images
    h1, h2 = fleet["hermes-1"], fleet["hermes-2"]
    assert hermesctl("--project", project, "profile", "create", "hermes-1:coder", "--start").code == 0
    assert hermesctl("--project", project, "profile", "create", "hermes-2:idle").code == 0
    before = {c.name: _settings(c) for c in (h1, h2)}

    # Bad input changes nothing: an image that is not there.
    missing = hermesctl("--project", project, "upgrade", "*", "--image", "hermes-agent:wtc-nope",
                        "--backup-dir", str(tmp_path))
    assert missing.code == 4 and "not on endpoint" in missing.stderr, missing
    nowhere = hermesctl("--project", project, "upgrade", "*", "--image", new, "--backup-dir", "/dev/null/x")
    assert nowhere.code == 2 and "backup directory" in nowhere.stderr, nowhere
    plan = hermesctl("--project", project, "upgrade", "*", "--image", new, "--dry-run", "--json")
    assert plan.code == 0, plan
    steps = plan.json()["plan"]
    assert [(s["container"], s["action"], s["to_version"]) for s in steps] == [
        (h1.name, "upgrade", NEXT_VERSION), (h2.name, "upgrade", NEXT_VERSION)]
    assert steps[0]["restart"] == "unless-stopped" and steps[0]["volumes"]
    assert _container(docker_client, h1.name).id == h1.id  # the dry run recreated nothing

    res = hermesctl("--project", project, "upgrade", "*", "--image", new, "--backup-dir", str(tmp_path), "--json")
    assert res.code == 0, res
    outcomes = res.json()["containers"]
    assert [(o["container"], o["image"], o["result"]) for o in outcomes] == [
        (h1.name, new, "upgraded"), (h2.name, new, "upgraded")]
    # One container at a time: the second was stopped only after the first served again.
    progress = res.stderr.splitlines()
    first_up = next(i for i, l in enumerate(progress) if h1.name in l and "upgraded" in l)
    second_stop = next(i for i, l in enumerate(progress) if h2.name in l and "stopping" in l)
    assert first_up < second_stop
    for o in outcomes:
        assert Path(o["backup"]).is_file()

    for c in (h1, h2):
        now = _container(docker_client, c.name)
        assert now.id != c.id and now.attrs["Config"]["Image"] == new
        assert now.labels["io.hermes-agent.version"] == NEXT_VERSION  # the new image's label
        assert _settings(now) == before[c.name]
    assert not docker_client.containers.list(all=True, filters={"name": "pre-upgrade"})
    # Compose still owns them; the profiles and their desired states came along.
    ps = subprocess.run(compose + ["ps", "--format", "json"], env=env, capture_output=True, text=True)
    assert h1.name in ps.stdout and h2.name in ps.stdout
    rows = {(r["container"], r["profile"]): r for r in
            hermesctl("--project", project, "ps", "--json").json()["gateways"]}
    assert rows[(h1.name, "coder")]["state"] == "up" and rows[(h1.name, "coder")]["desired_state"] == "running"
    assert rows[(h2.name, "idle")]["state"] == "down"
    # Run again: nothing to do.
    again = hermesctl("--project", project, "upgrade", "*", "--image", new, "--backup-dir", str(tmp_path), "--json")
    assert [o["result"] for o in again.json()["containers"]] == ["already", "already"]


def test_failed_upgrade_rolls_back_with_no_data_lost(docker_client, compose_fleet, images, tmp_path):
    project, fleet, compose, env = compose_fleet
    old, _, bad = images
    h1, h2 = fleet["hermes-1"], fleet["hermes-2"]
    assert hermesctl("--project", project, "profile", "create", "hermes-1:coder", "--start").code == 0
    assert hermesctl("--project", project, "profile", "create", "hermes-1:idle").code == 0
    state_before = sh(h1, "cat /opt/data/profiles/coder/gateway_state.json")
    assert json.loads(state_before)["desired_state"] == "running"

    res = hermesctl("--project", project, "upgrade", "*", "--image", bad, "--backup-dir", str(tmp_path),
                    "--timeout", "90", "--json")
    assert res.code == 1, res
    outcomes = {o["container"]: o for o in res.json()["containers"]}
    assert outcomes[h1.name]["result"] == "rolled back" and outcomes[h1.name]["image"] == old
    assert "restart" in outcomes[h1.name]["detail"] or "exited" in outcomes[h1.name]["detail"]
    # Exactly what the failed boot changed was put back, nothing else.
    assert sorted(outcomes[h1.name]["changed_files_restored"]) == [
        "profiles/coder/gateway_state.json", "profiles/coder/state.db-wal"]
    # The upgrade stopped: the second container was not touched.
    assert outcomes[h2.name]["result"] == "unchanged" and outcomes[h2.name]["image"] == old
    assert _container(docker_client, h2.name).id == h2.id

    back = _container(docker_client, h1.name)
    assert back.id == h1.id and back.attrs["Config"]["Image"] == old and back.status == "running"
    assert not docker_client.containers.list(all=True, filters={"name": "pre-upgrade"})
    # This container's helpers (the daemon may be shared with other runs' helpers).
    assert not docker_client.containers.list(all=True, filters={"label": f"io.hermes-agent.helper-for={h1.id}"})
    wait_for(lambda: svstat(back, "coder")["up"], what="coder up after the rollback")
    assert json.loads(sh(back, "cat /opt/data/profiles/coder/gateway_state.json"))["desired_state"] == "running"
    assert sh(back, "head -c 4 /opt/data/profiles/coder/state.db-wal 2>/dev/null || true") != "junk"
    listed = {p["name"] for p in hermesctl("--project", project, "profile", "list", "--json").json()["profiles"]
              if p["container"] == h1.name}
    assert listed == {"coder", "idle"}
    table = hermesctl("--project", project, "upgrade", "hermes-1", "--image", bad, "--timeout", "60",
                      "--backup-dir", str(tmp_path))
    assert table.code == 1 and "rolled back" in table.stdout and old in table.stdout


def test_upgrade_of_a_plain_container_keeps_its_anonymous_volume(docker_client, images, tmp_path):
    old, new, _ = images
    name = f"wtc-{RUN_ID}-plain"
    # No -v: the image's VOLUME /opt/data gives it an anonymous volume.
    c = docker_client.containers.run(old, ["sleep", "infinity"], name=name, detach=True,
                                     environment={"HERMES_NOTE": "kept"}, labels={"team": "ops"},
                                     restart_policy={"Name": "on-failure", "MaximumRetryCount": 3},
                                     healthcheck=QUICK_HEALTH)
    volume = next(m["Name"] for m in c.attrs["Mounts"] if m["Destination"] == "/opt/data")
    try:
        wait_ready(c)
        assert hermesctl("profile", "create", f"{name}:coder", "--start").code == 0
        res = hermesctl("upgrade", name, "--image", new, "--backup-dir", str(tmp_path))
        assert res.code == 0, res
        assert "upgraded" in res.stdout
        now = _container(docker_client, name)
        assert now.attrs["Config"]["Image"] == new
        assert [m["Name"] for m in now.attrs["Mounts"] if m["Destination"] == "/opt/data"] == [volume]
        assert "HERMES_NOTE=kept" in now.attrs["Config"]["Env"] and now.labels["team"] == "ops"
        assert now.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        assert svstat(now, "coder")["up"]
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"name": name}):
            leftover.remove(force=True)
        docker_client.volumes.get(volume).remove(force=True)


def test_an_image_that_turns_unhealthy_is_rolled_back(docker_client, images, tmp_path):
    old = images[0]
    name = f"wtc-{RUN_ID}-unhealthy"
    volume = f"wtc-{RUN_ID}-unhealthy-data"
    c = docker_client.containers.run(old, ["sleep", "infinity"], name=name, detach=True,
                                     volumes={volume: {"bind": "/opt/data", "mode": "rw"}})
    try:
        wait_ready(c)
        assert hermesctl("profile", "create", f"{name}:coder", "--start").code == 0
        # --settle 5: Docker's verdict (within ~1 s here) comes before ours would.
        res = hermesctl("upgrade", name, "--image", UNHEALTHY, "--settle", "5", "--timeout", "60",
                        "--backup-dir", str(tmp_path), "--json")
        assert res.code == 1, res
        [outcome] = res.json()["containers"]
        assert outcome["result"] == "rolled back" and outcome["detail"].startswith("unhealthy"), outcome
        back = _container(docker_client, name)
        assert back.id == c.id and back.attrs["Config"]["Image"] == old and back.status == "running"
        wait_for(lambda: svstat(back, "coder")["up"], what="coder up after the rollback")
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"name": name}):
            leftover.remove(force=True)
        docker_client.volumes.get(volume).remove(force=True)


def test_a_container_started_with_rm_is_refused_untouched(docker_client, images, tmp_path):
    old, new, _ = images
    name = f"wtc-{RUN_ID}-autorm"
    c = docker_client.containers.run(old, ["sleep", "infinity"], name=name, detach=True, auto_remove=True)
    try:
        wait_ready(c)
        res = hermesctl("upgrade", name, "--image", new, "--backup-dir", str(tmp_path))
        assert res.code == 2 and "--rm" in res.stderr, res
        assert _container(docker_client, name).status == "running"
        assert list(tmp_path.iterdir()) == []
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"name": name}):
            leftover.remove(force=True, v=True)


def _plain(docker_client, image, name, volume):
    c = docker_client.containers.run(image, ["sleep", "infinity"], name=name, detach=True,
                                     volumes={volume: {"bind": "/opt/data", "mode": "rw"}}, healthcheck=QUICK_HEALTH,
                                     environment={"S6_BEHAVIOUR_IF_STAGE2_FAILS": "2"})  # a failed boot exits
    wait_ready(c)
    return c


def _cleanup(docker_client, name, volume):
    for leftover in docker_client.containers.list(all=True, filters={"name": name}):
        leftover.remove(force=True)
    docker_client.volumes.get(volume).remove(force=True)


def test_an_image_whose_healthcheck_never_passes_is_rolled_back(docker_client, images, tmp_path):
    """Issue 14: the start period is no pass. Our own gate (booted, gateways up for --settle)
    would accept this image; Docker's verdict never comes, so it is rolled back."""
    old = images[0]
    name, volume = f"wtc-{RUN_ID}-neverhealthy", f"wtc-{RUN_ID}-neverhealthy-data"
    # The container's own quick healthcheck is a setting recreate keeps; the test image's is a
    # new image default, so drop ours for this one: the new container must get the image's.
    c = docker_client.containers.run(old, ["sleep", "infinity"], name=name, detach=True,
                                     volumes={volume: {"bind": "/opt/data", "mode": "rw"}})
    try:
        wait_ready(c)
        assert hermesctl("profile", "create", f"{name}:coder", "--start").code == 0
        # --timeout 45: the old container, back, is checked first after the image's 30 s interval.
        res = hermesctl("upgrade", name, "--image", NEVER_HEALTHY, "--settle", "2", "--timeout", "45",
                        "--backup-dir", str(tmp_path), "--json")
        assert res.code == 1, res
        [outcome] = res.json()["containers"]
        assert outcome["result"] == "rolled back" and "health: starting" in outcome["detail"], outcome
        back = _container(docker_client, name)
        assert back.id == c.id and back.attrs["Config"]["Image"] == old
    finally:
        _cleanup(docker_client, name, volume)


def test_kill_9_mid_upgrade_is_shown_and_recover_undoes_it(docker_client, images, tmp_path):
    """Issue 14: hermesctl killed while the new container boots leaves NAME-pre-upgrade and a
    changed volume; ps and doctor say so with the fix, and `upgrade --recover` puts it all back."""
    old, _, bad = images
    name, volume = f"wtc-{RUN_ID}-kill9", f"wtc-{RUN_ID}-kill9-data"
    state_home = tmp_path / "state"
    env = {"XDG_STATE_HOME": str(state_home)}
    c = _plain(docker_client, old, name, volume)
    try:
        assert hermesctl("profile", "create", f"{name}:coder", "--start").code == 0
        proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "upgrade", name, "--image", bad,
                                 "--timeout", "120", "--backup-dir", str(tmp_path / "b")],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env={**os.environ, "PYTHONPATH": str(ROOT), **env})
        try:
            for line in proc.stdout:
                if "waiting until it serves" in line:
                    break
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            proc.kill()
        # The broken image's boot changes the volume, then the container exits.
        wait_for(lambda: _container(docker_client, name).status == "exited", timeout=90,
                 what="the new container's failed boot")
        assert docker_client.containers.list(all=True, filters={"name": name + "-pre-upgrade"})
        ps = hermesctl("ps", name + "*", "--json", env=env)
        [op] = ps.json()["interrupted_operations"]
        assert op["instance"] == name and op["step"] == "waiting" and "--recover" in ps.stderr
        doctor = hermesctl("doctor", "--json", env=env)
        assert any(f["check"] == "interrupted-operation" and not f["ok"] for f in doctor.json()["findings"])

        rec = hermesctl("upgrade", "--recover", "--timeout", "90", "--json", env=env)
        assert rec.code == 0, rec
        [outcome] = rec.json()["containers"]
        assert outcome["result"] == "rolled back" and sorted(outcome["changed_files_restored"]) == [
            "profiles/coder/gateway_state.json", "profiles/coder/state.db-wal"], outcome
        back = _container(docker_client, name)
        assert back.id == c.id and back.attrs["Config"]["Image"] == old and back.status == "running"
        assert not docker_client.containers.list(all=True, filters={"name": "pre-upgrade"})
        assert json.loads(sh(back, "cat /opt/data/profiles/coder/gateway_state.json"))["desired_state"] == "running"
        assert hermesctl("ps", name, "--json", env=env).json()["interrupted_operations"] == []
    finally:
        _cleanup(docker_client, name, volume)
