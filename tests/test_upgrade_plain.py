"""Issue 8, point 3, and issue 14: hermesctl upgrade on a plain container (compose fleets:
test_upgrade.py): its settings and volume kept and its backup private, an unhealthy or
never-healthy image rolled back, `--rm` refused, kill -9 mid-upgrade recovered.

The rollback tests share one container: a rollback gives back the very container (same id, old
image, running, its data as the backup had it), which is what the next test starts from."""
import json
import os
import signal
import stat
import subprocess
import sys

import pytest

from conftest import (QUICK_HEALTH, ROOT, RUN_ID, UPGRADE_NEVER_HEALTHY as NEVER_HEALTHY,
                      UPGRADE_QUICK_HEALTH as QUICK_OURS, UPGRADE_UNHEALTHY as UNHEALTHY, hermesctl, sh, svstat,
                      wait_for, wait_ready)


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _container(client, name):
    c = client.containers.get(name)
    c.reload()
    return c


def _cleanup(docker_client, name, volume):
    for leftover in docker_client.containers.list(all=True, filters={"name": name}):
        leftover.remove(force=True)
    docker_client.volumes.get(volume).remove(force=True)


def _with_coder_running(docker_client, name, volume):
    """A container of ours on a named volume, booted, its `coder` gateway started. Its quick
    healthcheck is the image's (QUICK_OURS), not a container setting: recreate keeps a container's
    setting, and the new container must get the new image's own; the rollback's wait for the old
    container's verdict takes seconds, not the 30 s of our image's interval. A failed boot exits
    (S6_BEHAVIOUR_IF_STAGE2_FAILS=2), in this container and in those an upgrade recreates from it."""
    c = docker_client.containers.run(QUICK_OURS, ["sleep", "infinity"], name=name, detach=True,
                                     volumes={volume: {"bind": "/opt/data", "mode": "rw"}},
                                     environment={"S6_BEHAVIOUR_IF_STAGE2_FAILS": "2"})
    try:
        wait_ready(c)
        assert hermesctl("profile", "create", f"{name}:coder", "--start").code == 0
    except BaseException:
        _cleanup(docker_client, name, volume)
        raise
    return c


@pytest.fixture(scope="module")
def shared_coder(docker_client, upgrade_images):
    name, volume = f"wtc-{RUN_ID}-rollback", f"wtc-{RUN_ID}-rollback-data"
    c = _with_coder_running(docker_client, name, volume)
    yield c
    _cleanup(docker_client, name, volume)


@pytest.fixture
def coder_running(docker_client, shared_coder):
    """The shared container as every rollback leaves it: the same one, running, its coder up."""
    c = _container(docker_client, shared_coder.name)
    assert c.id == shared_coder.id and c.status == "running", "an earlier test did not give the container back"
    wait_for(lambda: svstat(c, "coder")["up"], what="coder up")
    return c


def test_upgrade_of_a_plain_container_keeps_its_anonymous_volume(docker_client, upgrade_images, tmp_path):
    old, new, _ = upgrade_images
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
        # Its backup is private whatever the umask: 0600 in directories of 0700 it creates.
        out = tmp_path / "state" / "backups"
        previous = os.umask(0)
        try:
            res = hermesctl("upgrade", name, "--image", new, "--backup-dir", str(out))
        finally:
            os.umask(previous)
        assert res.code == 0, res
        assert "upgraded" in res.stdout
        [archive] = [p for p in out.iterdir() if not p.name.endswith(".sha256")]
        assert [_mode(p) for p in (out.parent, out)] == [0o700, 0o700]
        assert [_mode(p) for p in (archive, archive.with_name(archive.name + ".sha256"))] == [0o600, 0o600]
        now = _container(docker_client, name)
        assert now.attrs["Config"]["Image"] == new
        assert [m["Name"] for m in now.attrs["Mounts"] if m["Destination"] == "/opt/data"] == [volume]
        assert "HERMES_NOTE=kept" in now.attrs["Config"]["Env"] and now.labels["team"] == "ops"
        assert now.attrs["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 3}
        assert svstat(now, "coder")["up"]
    finally:
        _cleanup(docker_client, name, volume)


def test_an_image_that_turns_unhealthy_is_rolled_back(docker_client, upgrade_images, coder_running, tmp_path):
    old, c = QUICK_OURS, coder_running
    # --settle 5: Docker's verdict (within ~1 s here) comes before ours would.
    res = hermesctl("upgrade", c.name, "--image", UNHEALTHY, "--settle", "5", "--timeout", "60",
                    "--backup-dir", str(tmp_path), "--json")
    assert res.code == 1, res
    [outcome] = res.json()["containers"]
    assert outcome["result"] == "rolled back" and outcome["detail"].startswith("unhealthy"), outcome
    back = _container(docker_client, c.name)
    assert back.id == c.id and back.attrs["Config"]["Image"] == old and back.status == "running"
    wait_for(lambda: svstat(back, "coder")["up"], what="coder up after the rollback")


def test_a_container_started_with_rm_is_refused_untouched(docker_client, upgrade_images, tmp_path):
    old, new, _ = upgrade_images
    name = f"wtc-{RUN_ID}-autorm"
    # Not booted (sleep is its process): the refusal reads only how it was created, and a boot
    # would cost a second of this host's CPU for nothing.
    docker_client.containers.run(old, ["infinity"], entrypoint=["sleep"], name=name, detach=True, auto_remove=True)
    try:
        res = hermesctl("upgrade", name, "--image", new, "--backup-dir", str(tmp_path))
        assert res.code == 2 and "--rm" in res.stderr, res
        assert _container(docker_client, name).status == "running"
        assert list(tmp_path.iterdir()) == []
    finally:
        for leftover in docker_client.containers.list(all=True, filters={"name": name}):
            leftover.remove(force=True, v=True)


def test_an_image_whose_healthcheck_never_passes_is_rolled_back(docker_client, upgrade_images, coder_running,
                                                                tmp_path):
    """Issue 14: the start period is no pass. Our own gate (booted, gateways up for --settle)
    would accept this image; Docker's verdict never comes, so it is rolled back."""
    old, c = QUICK_OURS, coder_running
    # --timeout 20: longer than our gate needs to pass (boot, coder up, --settle 2), so only
    # the healthcheck's verdict, still `starting` at the deadline, makes it a rollback.
    res = hermesctl("upgrade", c.name, "--image", NEVER_HEALTHY, "--settle", "2", "--timeout", "20",
                    "--backup-dir", str(tmp_path), "--json")
    assert res.code == 1, res
    [outcome] = res.json()["containers"]
    # Its check fails, run at once by hermesctl and by Docker (in its start period: `starting`).
    assert outcome["result"] == "rolled back" and outcome["detail"].startswith("not serving after 20s"), outcome
    assert "check failed" in outcome["detail"] or "healthcheck exit 1" in outcome["detail"], outcome
    back = _container(docker_client, c.name)
    assert back.id == c.id and back.attrs["Config"]["Image"] == old


def test_kill_9_mid_upgrade_is_shown_and_recover_undoes_it(docker_client, upgrade_images, coder_running, tmp_path):
    """Issue 14: hermesctl killed while the new container boots leaves NAME-pre-upgrade and a
    changed volume; ps and doctor say so with the fix, and `upgrade --recover` puts it all back."""
    _, _, bad = upgrade_images
    old, c, name = QUICK_OURS, coder_running, coder_running.name
    state_home = tmp_path / "state"
    env = {"XDG_STATE_HOME": str(state_home)}
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
    docker_client.api.wait(name, timeout=90, condition="not-running")
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
    # (its own name: another worker's upgrade test may hold a `-pre-upgrade` of its own now)
    assert not docker_client.containers.list(all=True, filters={"name": name + "-pre-upgrade"})
    assert json.loads(sh(back, "cat /opt/data/profiles/coder/gateway_state.json"))["desired_state"] == "running"
    assert hermesctl("ps", name, "--json", env=env).json()["interrupted_operations"] == []
