"""Issue 8, points 1-3 on a real two-node swarm: compose/stack.yaml, hermesctl --swarm, upgrade."""
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from conftest import ROOT, SWARM_BAD as BAD, SWARM_NEXT as NEXT, hermesctl, hermesctl_until_interrupted, sh, svstat, wait_for
from derived_images import NEXT_VERSION

STACK = "hctcs"


@pytest.fixture(scope="module")
def swarm(swarm_cluster, hermes_image):
    """This file's stack on the session's two-node swarm (conftest.swarm_cluster)."""
    env = {**os.environ, "HERMES_IMAGE": hermes_image, "HERMES_HEALTH_INTERVAL": "5s"}
    swarm_cluster.deploy_stack(STACK, ROOT / "compose" / "stack.yaml", env)
    try:
        wait_for(lambda: _serving(swarm_cluster) == 2, timeout=120, what="both Hermes tasks booted")
        yield swarm_cluster
    finally:
        swarm_cluster.remove_stack(STACK)


def _serving(cluster) -> int:
    res = hermesctl("--swarm", cluster.manager.url, "ps", "--json")
    return len({r["container"] for r in res.json()["gateways"]}) if res.code == 0 else 0


def _task_container(cluster, node, service: str):
    """The running container of a service on a node, straight from that node's daemon."""
    found = node.client().containers.list(filters={"label": f"com.docker.swarm.service.name={STACK}_{service}"})
    assert len(found) == 1, found
    return found[0]


def _running(node, service: str):
    found = node.client().containers.list(filters={"label": f"com.docker.swarm.service.name={STACK}_{service}"})
    return found[0] if len(found) == 1 else None


def _up(container, profile: str) -> bool:
    """Is the gateway up? False (not an error) while its supervisor is still being started."""
    try:
        return svstat(container, profile)["up"]
    except AssertionError:
        return False


def test_stack_file_pins_each_instance_with_update_and_rollback_config(swarm):
    manager = swarm.manager.client()
    n1, n2 = swarm.nodes
    services = {s.name: s.attrs["Spec"] for s in manager.services.list()}
    assert set(services) == {f"{STACK}_hermes-1", f"{STACK}_hermes-2"}
    for name, spec in services.items():
        instance = name.split("_", 1)[1]
        assert spec["Mode"]["Replicated"]["Replicas"] == 1
        assert spec["Labels"]["io.hermes-agent.managed"] == "true"
        update = spec["UpdateConfig"]
        assert (update["Parallelism"], update["FailureAction"], update["Order"]) == (1, "rollback", "stop-first")
        assert spec["RollbackConfig"]["Order"] == "stop-first"
        template = spec["TaskTemplate"]
        assert template["RestartPolicy"]["Condition"] == "any"
        assert template["ContainerSpec"]["Healthcheck"]["Test"][-1] == "/opt/hermes/docker/healthcheck.sh"
        assert template["Placement"]["Constraints"] == [f"node.labels.io.hermes-agent.instance.{instance} == true"]
        assert [(m["Type"], m["Source"], m["Target"]) for m in template["ContainerSpec"]["Mounts"]] == [
            ("volume", f"{STACK}_{instance}-data", "/opt/data")]
    # Each instance runs on its own node, on a volume local to that node.
    wait_for(lambda: _running(n1, "hermes-1") and _running(n2, "hermes-2"), timeout=60,
             what="each instance running on its own node")
    assert {v.name for v in n1.client().volumes.list()} >= {f"{STACK}_hermes-1-data"}
    assert f"{STACK}_hermes-2-data" not in {v.name for v in n1.client().volumes.list()}
    assert f"{STACK}_hermes-2-data" in {v.name for v in n2.client().volumes.list()}


def test_ps_spans_both_nodes_and_verbs_run_on_the_task_node(swarm, tmp_path):
    url = swarm.manager.url
    n1, n2 = swarm.nodes
    ps = hermesctl("--swarm", url, "ps", "--json")
    assert ps.code == 0, ps
    rows = ps.json()["gateways"]
    assert {(r["endpoint"], r["service"]) for r in rows} == {(n1.hostname, f"{STACK}_hermes-1"),
                                                              (n2.hostname, f"{STACK}_hermes-2")}
    header = hermesctl("--swarm", url, "ps").stdout.splitlines()[0].split()
    assert header[:3] == ["NODE", "CONTAINER", "SERVICE"]

    # SERVICE (without the stack prefix) as a target; the exec lands on the worker node.
    made = hermesctl("--swarm", url, "profile", "create", "hermes-2:writer", "--start")
    assert made.code == 0, made
    on_n2 = _task_container(swarm, n2, "hermes-2")
    wait_for(lambda: _up(on_n2, "writer"), what="writer up on node 2")
    before = svstat(on_n2, "writer")["pid"]
    # SERVICE.SLOT:PROFILE
    restart = hermesctl("--swarm", url, "gateway", "restart", f"{STACK}_hermes-2.1:writer", "--json")
    assert restart.code == 0, restart
    assert svstat(on_n2, "writer")["pid"] != before and svstat(on_n2, "writer")["up"]
    status = hermesctl("--swarm", url, "gateway", "status", "hermes-2.1:writer")
    assert status.code == 0 and n2.hostname in status.stdout
    logs = hermesctl("--swarm", url, "logs", "-n", "1", "hermes-2:writer")
    assert logs.code == 0 and f"{n2.hostname}/" in logs.stdout, logs
    doctor = hermesctl("--swarm", url, "doctor", "hermes-2", "--json")
    findings = doctor.json()["findings"]
    assert findings and {f["endpoint"] for f in findings} == {n2.hostname}, doctor
    # 8 s: on a loaded 2-core machine, start, discovery and the probe alone can take 3.
    followed = hermesctl_until_interrupted(["--swarm", url, "logs", "-f", "-n", "1", "hermes-2:writer"],
                                           lambda: time.sleep(8))
    assert f"{n2.hostname}/" in followed.stdout, followed
    # apply: a fleet file's container names a service.
    fleet = tmp_path / "fleet.yaml"
    fleet.write_text("version: 1\ncontainers:\n  hermes-2:\n    profiles:\n      applied: {gateway: running}\n")
    applied = hermesctl("--swarm", url, "apply", "-f", str(fleet), "--json")
    assert applied.code == 0 and all(ch["ok"] for ch in applied.json()["changes"]), applied
    assert svstat(on_n2, "applied")["up"]
    # Nothing happened on node 1.
    assert sh(_task_container(swarm, n1, "hermes-1"), "ls /opt/data/profiles").split() == []
    # A service that does not exist names the ones that do.
    missing = hermesctl("--swarm", url, "gateway", "status", "hermes-9:writer")
    assert missing.code == 4 and "hermes-1" in missing.stderr, missing


def test_a_node_that_does_not_answer_is_reported_and_the_rest_answers(swarm, tmp_path):
    url = swarm.manager.url
    n1, n2 = swarm.nodes
    n1.docker("node", "update", "--label-add", "io.hermes-agent.endpoint=unix:///nonexistent/hctc.sock", n2.hostname)
    try:
        ps = hermesctl("--swarm", url, "ps", "--json")
        assert ps.code == 7, ps
        doc = ps.json()
        assert {u["endpoint"] for u in doc["unreachable"]} == {n2.hostname}
        # Its instance is not left out (issue 14): a row, and an entry of unreachable[].
        assert [(u["container"], u["reason"]) for u in doc["unreachable"] if u["container"]] == [
            (f"{STACK}_hermes-2.1", "unreachable")]
        assert [r["container"] for r in doc["gateways"] if r["state"] == "unreachable"] == [f"{STACK}_hermes-2.1"]
        assert {r["endpoint"] for r in doc["gateways"] if r["state"] != "unreachable"} == {n1.hostname}
        assert f"endpoint {n2.hostname} did not answer" in ps.stderr
        status = hermesctl("--swarm", url, "gateway", "status", "hermes-2:coder")
        assert status.code == 7 and "unreachable" in status.stderr, status
        # Without the label: a fleet file's endpoint named after the node's hostname.
        n1.docker("node", "update", "--label-rm", "io.hermes-agent.endpoint", n2.hostname)
        fleet = tmp_path / "fleet.yaml"
        fleet.write_text(f"version: 1\nendpoints:\n  {n2.hostname}: {{host: '{n2.url}'}}\ncontainers: {{}}\n")
        ps = hermesctl("--swarm", url, "--fleet", str(fleet), "ps", "--json")
        assert ps.code == 0, ps
        assert {r["endpoint"] for r in ps.json()["gateways"]} == {n1.hostname, n2.hostname}
    finally:
        n1.docker("node", "update", "--label-add", f"io.hermes-agent.endpoint={n2.url}", n2.hostname)


def test_backup_and_restore_of_a_service_through_its_node(swarm, tmp_path):
    url = swarm.manager.url
    n1, _ = swarm.nodes
    assert hermesctl("--swarm", url, "profile", "create", "hermes-1:saved", "--start").code == 0
    made = hermesctl("--swarm", url, "backup", "hermes-1", "-o", str(tmp_path), "--json")
    assert made.code == 0, made
    [entry] = made.json()["backups"]
    assert entry["consistency"] == "sqlite-online-backup" and entry["endpoint"] == n1.hostname
    assert any(p["name"] == "saved" and p["desired_state"] == "running" for p in entry["profiles"])
    assert hermesctl("--swarm", url, "profile", "create", "hermes-1:later").code == 0

    refused = hermesctl("--swarm", url, "restore", entry["archive"], "hermes-1")
    assert refused.code == 9 and "--force" in refused.stderr, refused
    res = hermesctl("--swarm", url, "restore", entry["archive"], "hermes-1", "--force")
    assert res.code == 0, res
    # ps counts a task's container as soon as it is created; wait until it runs.
    back = wait_for(lambda: _running(n1, "hermes-1"), timeout=120, what="hermes-1 back after the restore")
    wait_for(lambda: _up(back, "saved"), what="the restored profile's gateway up")
    profiles = sh(back, "ls /opt/data/profiles").split()
    assert "saved" in profiles and "later" not in profiles
    assert sh(back, "find /opt/data ! -user hermes").strip() == ""
    assert not n1.client().containers.list(all=True, filters={"label": "io.hermes-agent.helper"})


def test_upgrade_rolls_through_then_a_failing_image_rolls_back_with_no_data_lost(swarm, tmp_path, hermes_image):
    url = swarm.manager.url
    n1, n2 = swarm.nodes
    manager = swarm.manager.client()
    assert hermesctl("--swarm", url, "profile", "create", "hermes-2:coder", "--start").code == 0
    assert hermesctl("--swarm", url, "profile", "create", "hermes-1:keeper").code == 0

    plan = hermesctl("--swarm", url, "upgrade", "*", "--image", NEXT, "--dry-run", "--json")
    assert plan.code == 0, plan
    assert [p["action"] for p in plan.json()["plan"]] == ["upgrade", "upgrade"]
    # Side by side: one service per node, each gated and kept apart (--parallel 2).
    res = hermesctl("--swarm", url, "upgrade", "*", "--image", NEXT, "--backup-dir", str(tmp_path), "--parallel", "2",
                    "--json")
    assert res.code == 0, res
    assert [(s["service"], s["node"], s["result"]) for s in res.json()["services"]] == [
        (f"{STACK}_hermes-1", n1.hostname, "upgraded"), (f"{STACK}_hermes-2", n2.hostname, "upgraded")]
    for s in manager.services.list():
        assert s.attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"] == NEXT
    on_n2 = _task_container(swarm, n2, "hermes-2")
    assert on_n2.labels["io.hermes-agent.version"] == NEXT_VERSION
    assert svstat(on_n2, "coder")["up"]
    assert "keeper" in sh(_task_container(swarm, n1, "hermes-1"), "ls /opt/data/profiles")
    n1_container = _task_container(swarm, n1, "hermes-1").id

    failed = hermesctl("--swarm", url, "upgrade", "hermes-2", "--image", BAD, "--backup-dir", str(tmp_path),
                       "--timeout", "90", "--json")
    assert failed.code == 1, failed
    [outcome] = failed.json()["services"]
    assert (outcome["result"], outcome["image"]) == ("rolled back", NEXT), outcome
    assert sorted(outcome["changed_files_restored"]) == ["profiles/coder/gateway_state.json",
                                                         "profiles/coder/state.db-wal"]
    spec = manager.services.get(f"{STACK}_hermes-2").attrs["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == NEXT and spec["Mode"]["Replicated"]["Replicas"] == 1
    back = _task_container(swarm, n2, "hermes-2")
    wait_for(lambda: _up(back, "coder"), what="coder up after the rollback")
    assert json.loads(sh(back, "cat /opt/data/profiles/coder/gateway_state.json"))["desired_state"] == "running"
    assert _task_container(swarm, n1, "hermes-1").id == n1_container  # node 1 untouched
    ps = hermesctl("--swarm", url, "ps", "--json")
    assert ps.code == 0, ps
    assert not n2.client().containers.list(all=True, filters={"label": "io.hermes-agent.helper"})


def _dockerd_pid(node) -> int:
    return int((node.root / "docker.pid").read_text().strip())


def test_a_service_at_0_replicas_is_listed_and_a_valid_target(swarm, tmp_path):
    """Issue 14: scaled to 0 it was invisible (ps omitted it) and restore/upgrade said exit 4."""
    url = swarm.manager.url
    n1, _ = swarm.nodes
    made = hermesctl("--swarm", url, "backup", "hermes-1", "-o", str(tmp_path), "--json")
    assert made.code == 0, made
    archive = made.json()["backups"][0]["archive"]
    n1.docker("service", "scale", "-d", f"{STACK}_hermes-1=0")
    try:
        wait_for(lambda: _running(n1, "hermes-1") is None, timeout=60, what="hermes-1 scaled to 0")
        ps = hermesctl("--swarm", url, "ps", "--json")
        assert ps.code == 0, ps
        rows = [r for r in ps.json()["gateways"] if r["service"] == f"{STACK}_hermes-1"]
        assert [(r["container"], r["state"]) for r in rows] == [(f"{STACK}_hermes-1", "scaled-to-0")]
        restored = hermesctl("--swarm", url, "restore", archive, "hermes-1", "--json")
        assert restored.code == 0, restored
        assert restored.json()["restarted"] is False and restored.json()["node"] == n1.hostname
        upgraded = hermesctl("--swarm", url, "upgrade", "hermes-1", "--image", NEXT, "--backup-dir", str(tmp_path),
                             "--json")
        assert upgraded.code == 0, upgraded
        assert [s["result"] for s in upgraded.json()["services"]] in (["skipped"], ["already"])
    finally:
        n1.docker("service", "scale", "-d", f"{STACK}_hermes-1=1")
    wait_for(lambda: _running(n1, "hermes-1"), timeout=120, what="hermes-1 back at 1 replica")


def test_ctrl_c_in_a_swarm_upgrade_is_recovered_with_its_replicas(swarm, tmp_path):
    """Issue 14: Ctrl-C one second in left the service at 0 replicas, silently; now the record
    is shown and `upgrade --recover` scales it back on its old spec with its volume as it was."""
    url = swarm.manager.url
    _, n2 = swarm.nodes
    manager = swarm.manager.client()
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    old_image = manager.services.get(f"{STACK}_hermes-2").attrs["Spec"]["TaskTemplate"]["ContainerSpec"]["Image"]
    proc = subprocess.Popen([sys.executable, "-m", "hermesctl", "--swarm", url, "upgrade", "hermes-2", "--image", BAD,
                             "--backup-dir", str(tmp_path / "b"), "--timeout", "90"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT), **env})
    try:
        for line in proc.stdout:
            if "stopping" in line:
                break
        time.sleep(1)
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 130 and "--recover" in rest, rest
    ps = hermesctl("--swarm", url, "ps", "--json", env=env)
    assert [op["instance"] for op in ps.json()["interrupted_operations"]] == [f"{STACK}_hermes-2"], ps
    rec = hermesctl("--swarm", url, "upgrade", "--recover", "--timeout", "90", "--json", env=env)
    assert rec.code == 0, rec
    spec = manager.services.get(f"{STACK}_hermes-2").attrs["Spec"]
    assert spec["TaskTemplate"]["ContainerSpec"]["Image"] == old_image and spec["Mode"]["Replicated"]["Replicas"] == 1
    wait_for(lambda: _running(n2, "hermes-2"), timeout=120, what="hermes-2 running again")
    assert hermesctl("--swarm", url, "ps", "--json", env=env).json()["interrupted_operations"] == []


def test_a_hung_node_costs_the_timeout_and_then_its_task_is_pending_not_omitted(swarm):
    """Issue 14: `kill -STOP` of a node's dockerd held every --swarm command ~2 minutes; once the
    manager marked the node down, its instance vanished from ps with exit 0."""
    url = swarm.manager.url
    n1, n2 = swarm.nodes
    start = time.monotonic()
    assert hermesctl("--swarm", url, "--timeout", "5", "ps").code == 0
    normal = time.monotonic() - start
    pid = _dockerd_pid(n2)
    os.kill(pid, signal.SIGSTOP)
    try:
        start = time.monotonic()
        ps = hermesctl("--swarm", url, "--timeout", "5", "ps", "--json")
        took = time.monotonic() - start
        assert ps.code == 7, ps
        assert took < normal + 5 + 2 + 3, (took, normal)  # --timeout + 2 s, plus this machine's noise
        rows = {r["container"]: r["state"] for r in ps.json()["gateways"]}
        assert rows[f"{STACK}_hermes-2.1"] in ("unreachable", "pending"), rows

        def marked_down():
            return "Down" in n1.docker("node", "ls", "--format", "{{.Hostname}} {{.Status}}").stdout
        wait_for(marked_down, timeout=90, interval=2, what="the manager marks node 2 down")
        ps = hermesctl("--swarm", url, "--timeout", "5", "ps", "--json")
        assert ps.code == 7, ps
        states = {r["container"]: r["state"] for r in ps.json()["gateways"] if r["service"] == f"{STACK}_hermes-2"}
        assert states and set(states.values()) <= {"pending", "unreachable"}, ps.json()["gateways"]
        status = hermesctl("--swarm", url, "--timeout", "5", "gateway", "status", "hermes-2:coder")
        assert status.code == 7, status
    finally:
        os.kill(pid, signal.SIGCONT)
