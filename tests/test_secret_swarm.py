"""Issue 19 on a real two-node swarm: {from_secret: NAME} attached to the service, written into
the profile's .env at boot by the image as hermes; never in argv, environment or inspect output;
a rotated secret is one task restart; drift in .env is put right without one."""
import json
import os

import pytest

from conftest import ROOT, hermesctl, sh, svstat, wait_for

STACK = "hcsec"
V1 = "discord-v1-3b7e1f09a4"
V2 = "discord-v2-c2d85e6f11"
SECRETS = (("hct-discord-v1", V1), ("hct-discord-v2", V2))
FLEET = """version: 1
containers:
  hermes-2:
    profiles:
      coder:
        gateway: running
        env:
          DISCORD_BOT_TOKEN: {{from_secret: {secret}}}
"""


@pytest.fixture(scope="module")
def swarm(swarm_cluster, hermes_image):
    """This file's stack and secrets on the session's two-node swarm (conftest.swarm_cluster)."""
    env = {**os.environ, "HERMES_IMAGE": hermes_image, "HERMES_HEALTH_INTERVAL": "5s"}
    manager = swarm_cluster.manager
    swarm_cluster.deploy_stack(STACK, ROOT / "compose" / "stack.yaml", env)
    try:
        wait_for(lambda: _task(swarm_cluster) is not None, timeout=120, what="hermes-2 running on node 2")
        for name, value in SECRETS:
            manager.docker("secret", "create", name, "-", input=value + "\n")
        yield swarm_cluster
    finally:
        swarm_cluster.remove_stack(STACK)
        manager.docker("secret", "rm", *(name for name, _ in SECRETS), check=False)


def _task(cluster):
    """hermes-2's running, booted container on node 2 (None while it is being replaced)."""
    found = cluster.nodes[1].client().containers.list(
        filters={"label": f"com.docker.swarm.service.name={STACK}_hermes-2"})
    if len(found) != 1:
        return None
    done = found[0].exec_run(["test", "-e", "/run/s6/stage2-done"])
    return found[0] if done.exit_code == 0 else None


def _tasks(cluster) -> int:
    return len(cluster.manager.client().services.get(f"{STACK}_hermes-2").tasks())


def _token(container) -> str:
    lines = sh(container, "cat /opt/data/profiles/coder/.env").splitlines()
    return next(l.split("=", 1)[1] for l in lines if l.startswith("DISCORD_BOT_TOKEN="))


def test_a_swarm_secret_reaches_env_through_the_image_and_rotates_with_one_restart(swarm, tmp_path):
    url = swarm.manager.url
    n1, n2 = swarm.nodes
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text(FLEET.format(secret="hct-discord-v1"))

    plan = hermesctl("--swarm", url, "diff", "-f", str(fleet), "--show-values", "--json")
    assert plan.code == 1, plan
    v1_id = n1.docker("secret", "inspect", "-f", "{{.ID}}", "hct-discord-v1").stdout.strip()
    assert [(ch["action"], ch["detail"]) for ch in plan.json()["changes"]] == [
        ("create", ""), ("set-secret", f"DISCORD_BOT_TOKEN=from_secret:hct-discord-v1 (secret {v1_id[:12]}, was unset)"),
        ("start", "")]
    tasks = _tasks(swarm)

    res = hermesctl("--swarm", url, "apply", "-f", str(fleet), "--show-values", "--json")
    assert res.code == 0 and all(ch["ok"] for ch in res.json()["changes"]), res
    assert V1 not in res.stdout + res.stderr
    assert _tasks(swarm) == tasks + 1  # one restart: the service update
    c = wait_for(lambda: _task(swarm), timeout=60, what="the new task booted")
    assert _token(c) == V1
    assert sh(c, "stat -c '%U %a' /run/secrets/hermes-env.coder.DISCORD_BOT_TOKEN").strip() == "hermes 400"
    wait_for(lambda: svstat(c, "coder")["up"], what="coder up in the new task")
    # Only the secret's name is in the specs; the value never crossed an exec or the environment.
    service = swarm.manager.client().services.get(f"{STACK}_hermes-2").attrs
    assert V1 not in json.dumps(service) and V1 not in json.dumps(c.attrs)
    assert "secret-env:" in c.logs().decode() and V1 not in c.logs().decode()

    again = hermesctl("--swarm", url, "apply", "-f", str(fleet), "--json")
    assert again.code == 0 and again.json()["changes"] == [], again
    assert _tasks(swarm) == tasks + 1

    # Rotation: a new secret, one service update, one restart; applied once.
    fleet.write_text(FLEET.format(secret="hct-discord-v2"))
    rotated = hermesctl("--swarm", url, "apply", "-f", str(fleet), "--json")
    assert rotated.code == 0, rotated
    assert [ch["action"] for ch in rotated.json()["changes"]] == ["set-secret"]
    assert _tasks(swarm) == tasks + 2
    c = wait_for(lambda: _task(swarm), timeout=60, what="the rotated task booted")
    assert _token(c) == V2
    wait_for(lambda: svstat(c, "coder")["up"], what="coder up after the rotation")
    assert hermesctl("--swarm", url, "apply", "-f", str(fleet), "--json").json()["changes"] == []
    assert _tasks(swarm) == tasks + 2

    # hermes changed its .env: the container says so (never the value); apply writes the secret
    # back and restarts the gateway, not the task.
    sh(c, "sed -i 's/^DISCORD_BOT_TOKEN=.*/DISCORD_BOT_TOKEN=tampered/' /opt/data/profiles/coder/.env")
    pid = svstat(c, "coder")["pid"]
    drift = hermesctl("--swarm", url, "apply", "-f", str(fleet), "--json")
    assert drift.code == 0, drift
    assert [(ch["action"], ch["detail"]) for ch in drift.json()["changes"]] == [
        ("load-secrets", "DISCORD_BOT_TOKEN=from_secret:hct-discord-v2 (.env differs from the secret)"),
        ("restart", "settings changed")]
    assert _token(c) == V2 and _tasks(swarm) == tasks + 2
    assert wait_for(lambda: svstat(c, "coder")["up"] and svstat(c, "coder")["pid"]) != pid
    assert "tampered" not in drift.stdout + drift.stderr

    # Back to a value from the operator's environment: the secret is detached (one restart), so
    # that no boot writes it over the file's value again.
    fleet.write_text(FLEET.format(secret="x").replace("{from_secret: x}", "{from_env: HCT_TEST_DISCORD}"))
    env = {"HCT_TEST_DISCORD": "discord-from-env-77"}
    back = hermesctl("--swarm", url, "apply", "-f", str(fleet), "--json", env=env)
    assert back.code == 0, back
    assert [(ch["action"], ch["detail"].split(" (")[0]) for ch in back.json()["changes"]] == [
        ("set-env", "DISCORD_BOT_TOKEN=from_env:HCT_TEST_DISCORD"), ("unset-secret", "DISCORD_BOT_TOKEN")]
    assert _tasks(swarm) == tasks + 3
    c = wait_for(lambda: _task(swarm), timeout=60, what="the task without the secret booted")
    assert _token(c) == "discord-from-env-77"
    assert "hermes-env" not in sh(c, "ls /run/secrets 2>/dev/null || true")
    assert hermesctl("--swarm", url, "apply", "-f", str(fleet), "--json", env=env).json()["changes"] == []
    assert _tasks(swarm) == tasks + 3

    # A secret the swarm does not have: refused with the file's line, nothing changed.
    fleet.write_text(FLEET.format(secret="hct-discord-v9"))
    missing = hermesctl("--swarm", url, "apply", "-f", str(fleet))
    assert missing.code == 2, missing
    assert missing.stderr.strip() == (f"hermesctl: {fleet}:8: env DISCORD_BOT_TOKEN: no swarm secret named "
                                      "'hct-discord-v9' (docker secret create)")
    assert _tasks(swarm) == tasks + 3
