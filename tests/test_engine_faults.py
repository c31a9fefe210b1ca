"""The engine's branches under failure, on the fake backend (tests/fakebackend.py): milliseconds
each. The same behaviours on real containers and a real swarm: test_upgrade.py, test_swarm.py."""
import json
import threading
import time
from pathlib import Path

import pytest

from fakebackend import FakeBackend, FakeInstance, Interrupt, container_state
from hermesctl.backends.docker import backup
from hermesctl.backends.docker import daemon as daemon_mod
from hermesctl.backends.docker.daemon import DeadlineError, bounded
from hermesctl.core.errors import DaemonUnreachableError, HermesctlError
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.engine import health_gate, journal
from hermesctl.engine import upgrade as engine
from hermesctl.model.results import ItemResult, exit_status

MANIFEST = {"profiles": [{"name": "coder", "desired_state": "running"}], "files": {}}


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.setattr(engine, "POLL_S", 0.001)
    made = []

    def fake_backup(endpoint, ref, out_dir, **kwargs):
        path = Path(out_dir) / f"backup-{len(made)}.tar.gz"
        path.write_text("x")
        made.append(ref)
        return backup.BackupResult(path, MANIFEST, "0" * 64)
    monkeypatch.setattr(engine.backup, "create_backup", fake_backup)
    monkeypatch.setattr(engine.backup, "read_manifest", lambda path: MANIFEST)
    put_back = []
    monkeypatch.setattr(engine, "put_back", lambda data, made_: put_back.append(data.ref) or ["profiles/x"])
    return SimpleState(tmp_path, made, put_back)


class SimpleState:
    def __init__(self, root, made, put_back):
        self.root, self.made, self.put_back = root, made, put_back


def _run(backend, image="hermes-agent:new", timeout=0.2):
    said = []
    run = engine.Upgrade(backend, image, journal.operations_dir().parent / "backups", timeout=timeout,
                         settle=0, say=said.append)
    (journal.operations_dir().parent / "backups").mkdir(parents=True, exist_ok=True)
    return run.run(engine.plan(backend, [], image)), said


def test_a_healthy_image_is_upgraded_and_leaves_no_record():
    inst = FakeInstance("h1", new_states=[container_state("running", "starting"), container_state("running", "healthy")])
    [outcome], _ = _run(FakeBackend([inst]))
    assert outcome.result == "upgraded" and inst.log == ["stop", "data", "replace", "commit"]
    assert journal.pending() == []
    assert exit_status([outcome.as_result()]) == ExitStatus.OK


def test_an_image_whose_healthcheck_never_passes_is_rolled_back():
    """Start period forever and the check, run at once, failing: `starting` is no pass."""
    inst = FakeInstance("h1", new_states=[container_state("running", "starting")], checks=[1])
    backend = FakeBackend([inst])
    [outcome], _ = _run(backend)
    assert outcome.result == "rolled back" and "healthcheck exit 1" in outcome.detail
    assert backend.ran[0] == ("h1", ["/opt/hermes/docker/healthcheck.sh"])
    assert inst.log == ["stop", "data", "replace", "undo", "data", "start"]
    assert outcome.changed_files_restored == ["profiles/x"]
    assert exit_status([outcome.as_result()]) == ExitStatus.FAILED


def test_the_check_run_at_once_serves_when_docker_has_not_checked_yet():
    """No 30 s wait for Docker's first check: ours passes, Docker says nothing against it."""
    inst = FakeInstance("h1", new_states=[container_state("running", "starting")], checks=[1, 0])
    backend = FakeBackend([inst])
    [outcome], _ = _run(backend, timeout=5)
    assert outcome.result == "upgraded" and outcome.gate == health_gate.GATE_CHECK
    assert len(backend.ran) == 2


def test_the_check_passing_is_not_enough_without_the_boot_gate():
    """The health check only says no gateway is stuck down: a wanted one not up (yet, or
    between two crashes) keeps the container from counting as serving."""
    inst = FakeInstance("h1", new_states=[container_state("running", "starting")], checks=[0], gateways_up=())
    [outcome], _ = _run(FakeBackend([inst]))
    assert outcome.result == "rolled back" and outcome.detail.endswith("(gateways not up: coder)")


def test_docker_contradicting_the_check_is_no_pass():
    """Docker's own latest check failed (even in the start period): ours passing does not win."""
    inst = FakeInstance("h1", new_states=[container_state("running", "starting", docker_checked=1)], checks=[0])
    backend = FakeBackend([inst])
    [outcome], _ = _run(backend)
    assert outcome.result == "rolled back" and "docker's latest check failed" in outcome.detail
    assert backend.ran == []


def test_a_failed_check_from_before_a_restart_is_not_this_runs_verdict():
    """A rollback starts the old container again: Docker keeps the health log of its last run,
    whose failed check (while it stopped) says nothing about this one."""
    state = container_state("running", "starting", docker_checked=1)
    state["State"]["StartedAt"] = "2026-12-07T13:05:01.5Z"
    state["State"]["Health"]["Log"][0]["Start"] = "2026-12-07T13:04:59.000000001Z"
    inst = FakeInstance("h1", new_states=[state])
    verdict = health_gate.wait(FakeBackend([inst]), inst.replace("x"), [], timeout=1, settle=0, sleep=lambda s: None)
    assert verdict.serving and verdict.gate == health_gate.GATE_CHECK
    state["State"]["Health"]["Log"][0]["Start"] = "2026-12-07T13:05:02.25+00:00"  # this run's: it counts
    verdict = health_gate.wait(FakeBackend([inst]), inst.replace("x"), [], timeout=0.05, settle=0, sleep=lambda s: None)
    assert not verdict.serving and "docker's latest check failed" in verdict.detail


def test_dockers_healthy_is_a_pass_without_running_the_check():
    inst = FakeInstance("h1", new_states=[container_state("running", "healthy", docker_checked=0)])
    backend = FakeBackend([inst])
    [outcome], _ = _run(backend)
    assert outcome.result == "upgraded" and outcome.gate == health_gate.GATE_DOCKER and backend.ran == []


def test_an_engine_that_runs_no_healthchecks_leaves_the_boot_gate_to_decide():
    """Podman without systemd: `starting` forever, no check ever logged. Not "not healthy yet":
    no status will come, so the agent's boot gate decides, and the outcome says so."""
    booting = FakeInstance("a", new_states=[container_state("running", "starting")], checks=[1], booted=False)
    booted = FakeInstance("b", new_states=[container_state("running", "starting")], checks=[1])
    outcomes, said = _run(FakeBackend([booting, booted], runs_healthchecks=False), timeout=0.05)
    assert [(o.result, o.gate) for o in outcomes] == [("rolled back", health_gate.GATE_BOOT_NO_ENGINE),
                                                      ("not touched", "")]
    assert "booting" in outcomes[0].detail
    [outcome], _ = _run(FakeBackend([FakeInstance("b", new_states=[container_state("running", "starting")],
                                                  checks=[1])], runs_healthchecks=False))
    assert (outcome.result, outcome.gate) == ("upgraded", health_gate.GATE_BOOT_NO_ENGINE)


def test_docker_overdue_with_its_first_check_means_it_runs_none():
    """Not told the engine runs none: once Docker's first check is long overdue, the gate
    concludes it (the interval + timeout + grace have passed without a log entry)."""
    state = container_state("running", "starting")
    state["Config"]["Healthcheck"].update(Interval=10 ** 6, Timeout=10 ** 6)  # 1 ms each
    inst = FakeInstance("h1", new_states=[state], checks=[1])
    now = [0.0]
    verdict = health_gate.wait(FakeBackend([inst]), inst.replace("x"), [], timeout=60, settle=0,
                               clock=lambda: now[0], sleep=lambda s: now.__setitem__(0, now[0] + 1))
    assert verdict.serving and verdict.gate == health_gate.GATE_BOOT_NO_ENGINE


def test_without_a_healthcheck_configured_the_boot_gate_says_so():
    inst = FakeInstance("h1", new_states=[container_state("running", healthcheck=False)])
    [outcome], _ = _run(FakeBackend([inst]))
    assert outcome.result == "upgraded" and outcome.gate == health_gate.GATE_BOOT_NO_CHECK


def test_an_unhealthy_image_is_rolled_back_at_once():
    inst = FakeInstance("h1", new_states=[container_state("running", "unhealthy")])
    [outcome], _ = _run(FakeBackend([inst]), timeout=60)
    assert outcome.result == "rolled back" and outcome.detail.startswith("unhealthy")


def test_without_a_healthcheck_the_boot_gate_decides(monkeypatch):
    inst = FakeInstance("h1", new_states=[container_state("exited", healthcheck=False, exit_code=3)])
    [outcome], _ = _run(FakeBackend([inst]))
    assert outcome.result == "rolled back" and outcome.detail == "exited with code 3"


def test_one_of_n_failing_stops_the_upgrade_there():
    good = FakeInstance("a")
    bad = FakeInstance("b", new_states=[container_state("running", "unhealthy")])
    never = FakeInstance("c")
    outcomes, _ = _run(FakeBackend([good, bad, never]))
    assert [o.result for o in outcomes] == ["upgraded", "rolled back", "not touched"]
    assert never.log == []
    assert exit_status([o.as_result() for o in outcomes]) == ExitStatus.FAILED


def test_a_failed_backup_changes_nothing_and_starts_it_again():
    inst = FakeInstance("h1", fail_at={"data": HermesctlError("volume gone")})
    [outcome], _ = _run(FakeBackend([inst]))
    assert outcome.result == "unchanged" and "volume gone" in outcome.detail
    assert inst.log == ["stop", "data", "start"] and journal.pending() == []


@pytest.mark.parametrize("step", ["stop", "replace", "undo"])
def test_an_interrupt_between_steps_leaves_a_record_that_recover_undoes(step):
    fail = {step: Interrupt()}
    states = [container_state("running", "unhealthy")] if step == "undo" else [container_state("running", "healthy")]
    inst = FakeInstance("h1", fail_at=fail, new_states=states)
    backend = FakeBackend([inst])
    with pytest.raises(KeyboardInterrupt):
        _run(backend)
    [record] = journal.pending()
    assert record.body["instance"]["name"] == "h1" and record.step != "starting"
    assert journal.interrupted() == []  # its process (this one) still runs: not interrupted yet
    record.body["pid"] = 2 ** 22 + 1  # as left by a process that is gone
    record.update(record.step)
    assert [r.what for r in journal.interrupted()] == ["upgrade of h1 on node-1 to hermes-agent:new"]
    inst.fail_at.clear()
    inst.log.clear()
    outcomes = engine.recover(backend, lambda text: None, timeout=0.2, settle=0)
    assert [o.result for o in outcomes] == ["rolled back"]
    assert inst.log[0] == "undo" and inst.log[-1] == "start" and inst.running
    assert journal.pending() == []


def test_recover_finishes_an_upgrade_interrupted_after_it_served():
    inst = FakeInstance("h1", fail_at={"commit": Interrupt()})
    backend = FakeBackend([inst])
    with pytest.raises(KeyboardInterrupt):
        _run(backend)
    [record] = journal.pending()
    assert record.step == "committing"
    record.body["pid"] = 2 ** 22 + 1
    record.update(record.step)
    inst.fail_at.clear()
    outcomes = engine.recover(backend, lambda text: None, timeout=0.2, settle=0)
    assert [(o.result, o.detail) for o in outcomes] == [("upgraded", "finished")]
    assert inst.image == "hermes-agent:new" and journal.pending() == []


def test_a_hung_call_costs_its_deadline_and_no_more():
    hang = threading.Event()
    start = time.monotonic()
    with pytest.raises(DeadlineError):
        bounded(hang.wait, 0.2, "list containers")
    assert time.monotonic() - start < 1


def test_a_hung_daemon_fails_connect_within_the_timeout(monkeypatch):
    """The SDK's constructor asks the API version: with the daemon hung, that call never ends."""
    hang = threading.Event()
    monkeypatch.setattr(daemon_mod, "_api_client", lambda **kwargs: hang.wait())
    from hermesctl.config.endpoints import Resolved
    start = time.monotonic()
    with pytest.raises(DaemonUnreachableError, match="no answer within 0.3s"):
        daemon_mod.connect(Resolved("node-b", "unix:///nowhere.sock"), timeout=0.3)
    assert time.monotonic() - start < 1.3


def test_the_exit_code_of_results_and_what_did_not_answer():
    ok, down = ItemResult("a", True), ItemResult("b", False, "not-running")
    assert exit_status([ok]) == ExitStatus.OK
    assert exit_status([ok, down]) == ExitStatus.NOT_RUNNING
    assert exit_status([ok, ItemResult("c", False, "timeout")]) == ExitStatus.PARTIAL
    assert exit_status([ok, down], unreachable=["x"]) == ExitStatus.PARTIAL
    assert exit_status([ItemResult("c", False, "failed")], unreachable=["x"]) == ExitStatus.FAILED
    assert exit_status([], unreachable=[], base=ExitStatus.NOT_FOUND) == ExitStatus.NOT_FOUND


def test_the_record_is_json_a_person_can_read():
    record = journal.begin("upgrade", {"swarm": None}, {"kind": "container", "name": "h1", "endpoint": "e"},
                           image="i")
    body = json.loads(record.path.read_text())
    assert body["schema"] == journal.SCHEMA and body["step"] == "starting" and body["instance"]["name"] == "h1"
    record.done()
    assert not record.path.exists()


def test_recover_after_a_kill_during_docker_s_stop_leaves_it_running():
    """Issue 24: hermesctl killed while Docker still stops the container (step `stopping`): the
    stop finishes after recover. Recover waits for it (its own stop), starts the container and
    checks it runs before it forgets the record."""
    inst = FakeInstance("h1", fail_at={"stop": Interrupt()})
    backend = FakeBackend([inst])
    with pytest.raises(KeyboardInterrupt):
        _run(backend)
    [record] = journal.pending()
    assert record.step == "stopping"
    record.body["pid"] = 2 ** 22 + 1
    record.update(record.step)
    inst.fail_at.clear()
    inst.stop_in_flight = True  # the daemon goes on with the killed run's stop
    outcomes = engine.recover(backend, lambda text: None, timeout=0.2, settle=0)
    inst.finish_stop_in_flight()
    assert [o.result for o in outcomes] == ["rolled back"]
    assert inst.running, inst.log
    assert journal.pending() == []


def test_recover_removes_a_record_that_never_came_to_be():
    record = journal.begin("upgrade", {}, {"kind": "container", "name": "h1", "endpoint": "e"}, image="i")
    tmp = record.path.with_name(record.path.name + ".tmp")
    record.path.rename(tmp)  # killed between writing its first step and renaming it
    body = json.loads(tmp.read_text())
    tmp.write_text(json.dumps({**body, "pid": 2 ** 22 + 1}))
    engine.recover(FakeBackend([]), lambda text: None, timeout=0.2, settle=0)
    assert not tmp.exists() and journal.pending() == []


def test_ps_and_doctor_show_only_the_records_of_the_fleet_asked_about():
    """Issue 29: `ps --project demo` showed an interrupted upgrade of a container on another
    endpoint and project (the state directory is shared by every run). A record carries the
    endpoint and compose project it was made in; journal.interrupted_in keeps the fleet's own."""
    from fakefleet import container
    from hermesctl.backends.docker.fleet import Fleet, Unreachable
    from hermesctl.backends.docker.inventory import COMPOSE_PROJECT, WORKING_DIR
    from support.fake_docker import FakeDocker, endpoint as fake_endpoint

    def record(name, endpoint, **more):
        r = journal.begin("upgrade", {}, {"kind": "container", "name": name, "endpoint": endpoint, **more}, image="i")
        r.body["pid"] = 2 ** 22 + 1  # its process is gone
        r.update(r.step)
        return name
    record("demo-hermes-1-1", "local", compose_project="demo", compose_working_dir="/srv/demo")
    record("other-hermes-1-1", "local", compose_project="other", compose_working_dir="/srv/other")
    record("far-1", "ssh://ops@far", compose_project="demo", compose_working_dir="/srv/demo")
    record("plain", "local", compose_project=None, compose_working_dir=None)
    record("legacy", "local")  # made before records kept the project: judged by the names present

    def fleet(project=None, project_dir=None, present=(), unreachable=()):
        # The present containers are in the fleet's scope (its compose project's labels).
        labels = {COMPOSE_PROJECT: project} if project else {WORKING_DIR: project_dir} if project_dir else {}
        docker = FakeDocker([container(n, id="id" + n, labels=labels) for n in present])
        return Fleet(endpoints=[fake_endpoint(docker, "local")], project=project, project_dir=project_dir,
                     unreachable=[Unreachable(e, "does not answer") for e in unreachable])

    def shown(f, names=None):
        return sorted(r.body["instance"]["name"] for r in journal.interrupted_in(f, names))
    assert shown(fleet()) == ["demo-hermes-1-1", "legacy", "other-hermes-1-1", "plain"]  # not far-1
    assert shown(fleet(project="demo")) == ["demo-hermes-1-1"]
    assert shown(fleet(project="demo", present=["legacy"])) == ["demo-hermes-1-1", "legacy"]
    assert shown(fleet(project_dir="/srv/other")) == ["other-hermes-1-1"]
    assert shown(fleet(project="demo", unreachable=["ssh://ops@far"])) == ["demo-hermes-1-1", "far-1"]
    assert shown(fleet(), {"plain"}) == ["plain"]
