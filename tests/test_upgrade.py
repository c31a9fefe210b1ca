"""Issue 8, point 3: hermesctl upgrade on a compose fleet (plain containers: test_upgrade_plain.py).

One fleet for the file: the failed upgrade's rollback gives back the very containers (same ids,
old image, running, data as it was), and the rolling upgrade then starts from them."""
import json
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from conftest import IN_CI, ROOT, RUN_ID, hermesctl, sh, svstat, wait_for, wait_ready
from derived_images import NEXT_VERSION


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def compose_fleet(docker_client, upgrade_images):
    """hermes-1 with `coder` (started) and `idle`, hermes-2 with `idle`."""
    if shutil.which("docker") is None or subprocess.run(["docker", "compose", "version"], capture_output=True).returncode:
        if IN_CI:
            pytest.fail("docker compose v2 is not available (scripts/ensure-compose.sh)")
        pytest.skip("docker compose v2 is not available")
    project = f"hctc{RUN_ID}upg"
    env = {**os.environ, "COMPOSE_PROJECT_NAME": project, "HERMES_IMAGE": upgrade_images[0],
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
        assert hermesctl("--project", project, "profile", "create", "hermes-1:coder", "--start").code == 0
        assert hermesctl("--project", project, "profile", "create", "hermes-1:idle").code == 0
        assert hermesctl("--project", project, "profile", "create", "hermes-2:idle").code == 0
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
                       and k not in ("com.docker.compose.image", "com.docker.compose.config-hash")},
            "healthcheck": a["Config"]["Healthcheck"]["Test"], "hostname": a["Config"]["Hostname"],
            "networks": {n: sorted(x for x in s["Aliases"] or [] if x != c.id[:12])
                         for n, s in a["NetworkSettings"]["Networks"].items()}}


def test_failed_upgrade_rolls_back_with_no_data_lost(docker_client, compose_fleet, upgrade_images, tmp_path):
    project, fleet, compose, env = compose_fleet
    old, _, bad = upgrade_images
    h1, h2 = fleet["hermes-1"], fleet["hermes-2"]
    state_before = sh(h1, "cat /opt/data/profiles/coder/gateway_state.json")
    assert json.loads(state_before)["desired_state"] == "running"

    # The first container is the canary: its failure stops the run before the batch after it.
    res = hermesctl("--project", project, "upgrade", "*", "--image", bad, "--backup-dir", str(tmp_path),
                    "--timeout", "90", "--canary", "1", "--parallel", "2", "--json")
    assert res.code == 1, res
    outcomes = {o["container"]: o for o in res.json()["containers"]}
    assert outcomes[h1.name]["result"] == "rolled back" and outcomes[h1.name]["image"] == old
    assert "restart" in outcomes[h1.name]["detail"] or "exited" in outcomes[h1.name]["detail"]
    # Exactly what the failed boot changed was put back, nothing else.
    assert sorted(outcomes[h1.name]["changed_files_restored"]) == [
        "profiles/coder/gateway_state.json", "profiles/coder/state.db-wal"]
    # The upgrade stopped: the second container was not touched.
    assert outcomes[h2.name]["result"] == "not touched" and outcomes[h2.name]["image"] == old
    assert outcomes[h2.name]["detail"] == "the canary failed"
    assert _container(docker_client, h2.name).id == h2.id

    back = _container(docker_client, h1.name)
    assert back.id == h1.id and back.attrs["Config"]["Image"] == old and back.status == "running"
    assert not [c for name in (h1.name, h2.name)
                for c in docker_client.containers.list(all=True, filters={"name": name + "-pre-upgrade"})]
    # This container's helpers (the daemon may be shared with other runs' helpers).
    assert not docker_client.containers.list(all=True, filters={"label": f"io.hermes-agent.helper-for={h1.id}"})
    wait_for(lambda: svstat(back, "coder")["up"], what="coder up after the rollback")
    assert json.loads(sh(back, "cat /opt/data/profiles/coder/gateway_state.json"))["desired_state"] == "running"
    assert sh(back, "head -c 4 /opt/data/profiles/coder/state.db-wal 2>/dev/null || true") != "junk"
    listed = {p["name"] for p in hermesctl("--project", project, "profile", "list", "--json").json()["profiles"]
              if p["container"] == h1.name}
    assert listed == {"coder", "idle"}
    # (What the table says of such an outcome: test_the_table_of_a_rollback_names_the_image_it_is_back_on.)


def test_the_table_of_a_rollback_names_the_image_it_is_back_on(monkeypatch, capsys, tmp_path):
    """Without --json: the row says `rolled back` and the old image. The table is printed from the
    same outcome the JSON above is, so the fake backend (tests/fakebackend.py) proves it in
    milliseconds, where a second real failed upgrade took two boots and three helpers."""
    from fakebackend import FakeBackend, FakeInstance, container_state, fake_data_steps
    from fakefleet import cli_on
    from hermesctl.engine import upgrade as engine
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(engine, "POLL_S", 0.001)
    fake_data_steps(monkeypatch, {"profiles": [{"name": "coder", "desired_state": "running"}], "files": {}})
    failing = FakeInstance("hermes-1", new_states=[container_state("exited", healthcheck=False, exit_code=3)])
    code, out, err = cli_on(FakeBackend([failing]), monkeypatch, capsys)(
        "upgrade", "hermes-1", "--image", "hermes-agent:bad", "--backup-dir", str(tmp_path / "b"),
        "--timeout", "0.2", "--settle", "0")
    assert code == 1, err + out
    [row] = [line for line in out.splitlines() if line.startswith("hermes-1")]
    assert "rolled back" in row and "hermes-agent:old" in row and "exited with code 3" in row, out


def test_upgrade_rolls_through_a_compose_fleet(docker_client, compose_fleet, upgrade_images, tmp_path):
    project, fleet, compose, env = compose_fleet
    old, new, _ = upgrade_images
    h1, h2 = fleet["hermes-1"], fleet["hermes-2"]
    assert _container(docker_client, h1.name).attrs["Config"]["Image"] == old, "the fleet is not at the old image"
    before = {c.name: _settings(c) for c in (h1, h2)}  # as compose made them (a rollback keeps them)

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

    # In the environment compose ran in (as an operator's shell with its .env): compose's hash of
    # each service, with the new image, is what the new containers carry.
    res = hermesctl("--project", project, "upgrade", "*", "--image", new, "--backup-dir", str(tmp_path), "--json",
                    env=env)
    assert res.code == 0, res
    assert "then `docker compose up -d` recreates nothing" in res.stderr
    outcomes = res.json()["containers"]
    assert {o["gate"] for o in outcomes} <= {"healthcheck run at once + boot gate, docker agreeing",
                                             "docker healthy + boot gate"}
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
    # (these containers' own: another worker's upgrade test may hold a `-pre-upgrade` now)
    assert not [c for name in (h1.name, h2.name)
                for c in docker_client.containers.list(all=True, filters={"name": name + "-pre-upgrade"})]
    # Compose still owns them; the profiles and their desired states came along.
    ps = subprocess.run(compose + ["ps", "--format", "json"], env=env, capture_output=True, text=True)
    assert h1.name in ps.stdout and h2.name in ps.stdout
    rows = {(r["container"], r["profile"]): r for r in
            hermesctl("--project", project, "ps", "--json").json()["gateways"]}
    assert rows[(h1.name, "coder")]["state"] == "up" and rows[(h1.name, "coder")]["desired_state"] == "running"
    assert rows[(h2.name, "idle")]["state"] == "down"
    # Compose agrees: with the project naming the new image, `up -d` recreates nothing.
    ids = {c.name: _container(docker_client, c.name).id for c in (h1, h2)}
    up = subprocess.run(compose + ["up", "-d"], env={**env, "HERMES_IMAGE": new}, capture_output=True, text=True)
    assert up.returncode == 0, up.stderr
    assert "Recreate" not in up.stderr, up.stderr
    assert {c.name: _container(docker_client, c.name).id for c in (h1, h2)} == ids
    # Run again: nothing to do.
    again = hermesctl("--project", project, "upgrade", "*", "--image", new, "--backup-dir", str(tmp_path), "--json")
    assert [o["result"] for o in again.json()["containers"]] == ["already", "already"]
