"""Truth under failure, on fakes (milliseconds): every instance the orchestrator wants is in the
answer and anything unanswered is exit 7; logs that time out are 7; doctor does not call a
missing /command ok; ps and doctor show an interrupted operation with its fix. The real-daemon
and real-swarm halves: test_upgrade.py, test_swarm.py, test_cli_errors_doctor.py."""
import copy
import json

import pytest

from fakefleet import FakeFleet, cli_on, container, recorded
from support.fake_docker import FakeDocker, endpoint as fake_endpoint
from hermesctl.backends.docker.fleet import Fleet
from hermesctl.backends.swarm.backend import SwarmBackend, SwarmServiceInfo, SwarmTask
from hermesctl.core.errors import ExecTimeoutError
from hermesctl.engine import journal

H1 = recorded("status-h1.json")


def _invoke(monkeypatch, capsys, fleet):
    return cli_on(fleet, monkeypatch, capsys)


@pytest.fixture(autouse=True)
def state_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


def _facts(command_dir) -> dict:
    return {"schema": "hermes-contract/v1", "verb": "facts", "command_dir": command_dir,
            "ownership": {"misowned": [], "misowned_count": 0}, "profiles": [], "status": copy.deepcopy(H1)}


@pytest.mark.parametrize("command_dir, ok", [(True, True), (False, False), (None, False)])
def test_doctor_says_ok_only_when_s6_svc_is_there(monkeypatch, capsys, command_dir, ok):
    run = _invoke(monkeypatch, capsys, FakeFleet([container("h1")], {"h1": {"facts": _facts(command_dir)}}))
    code, out, _ = run("doctor", "--json")
    doc = json.loads(out)
    [finding] = [f for f in doc["findings"] if f["check"] == "command-dir"]
    assert finding["ok"] is ok and ("missing" in finding["detail"]) is (not ok)
    assert doc["ok"] is False and code == 1  # h1's recorded gateways crash-loop and park anyway


def test_logs_that_time_out_exit_7(monkeypatch, capsys):
    fleet = FakeFleet([container("h1")], {"h1": {"status": H1, "tail": ExecTimeoutError("h1: no answer within 3s")}})
    code, _, err = _invoke(monkeypatch, capsys, fleet)("logs", "h1:pa")
    assert code == 7 and "did not answer in time" in err


def _task(cid: str, name: str):
    return container(name, id=cid, status="Up 1 minute (healthy)",
                     labels={"com.docker.swarm.service.name": "st_hermes-1"})


def _swarm(node_b_listing) -> Fleet:
    a = fake_endpoint(FakeDocker([_task("c1", "st_hermes-1.1.x")], {"st_hermes-1.1.x": {"status": H1}}), "node-a")
    b = fake_endpoint(FakeDocker(node_b_listing), "node-b")
    tasks = [SwarmTask("t1", "st_hermes-1", "hermes-1", 1, "node-a", "running", "c1"),
             SwarmTask("t2", "st_hermes-2", "hermes-2", 1, "node-b", "running", "c2"),
             SwarmTask("t3", "st_hermes-3", "hermes-3", 1, "", "pending", None)]
    services = [SwarmServiceInfo("s1", "st_hermes-1", "hermes-1", 1), SwarmServiceInfo("s2", "st_hermes-2", "hermes-2", 1),
                SwarmServiceInfo("s3", "st_hermes-3", "hermes-3", 1), SwarmServiceInfo("s4", "st_hermes-4", "hermes-4", 0)]
    return Fleet(endpoints=[a, b], backend=SwarmBackend(tasks=tasks, services=services))


def test_every_wanted_instance_is_in_ps_and_the_unanswered_make_it_7(monkeypatch, capsys):
    """Node B down, hermes-3 pending with no node, hermes-4 at 0 replicas: all four are rows."""
    fleet = _swarm(ConnectionError("node-b: connection refused"))
    code, out, err = _invoke(monkeypatch, capsys, fleet)("ps", "--json")
    doc = json.loads(out)
    states = {}
    for g in doc["gateways"]:
        states.setdefault(g["container"], set()).add(g["state"])
    assert states["st_hermes-2.1"] == {"unreachable"} and states["st_hermes-3.1"] == {"pending"}
    assert states["st_hermes-4"] == {"scaled-to-0"} and "st_hermes-1.1.x" in states
    reasons = {(u["container"], u["reason"]) for u in doc["unreachable"]}
    assert ("st_hermes-2.1", "unreachable") in reasons and ("st_hermes-3.1", "pending") in reasons
    assert code == 7


def test_a_target_that_is_pending_is_7_not_not_found(monkeypatch, capsys):
    fleet = _swarm([])
    code, _, err = _invoke(monkeypatch, capsys, fleet)("gateway", "status", "hermes-3:coder")
    assert code == 7 and "pending" in err


def test_ps_and_doctor_show_an_interrupted_operation_with_its_fix(monkeypatch, capsys):
    record = journal.begin("upgrade", {}, {"kind": "container", "name": "h1", "endpoint": "default"},
                           image="hermes-agent:new")
    record.body["pid"] = 2 ** 22 + 1  # its process is gone
    record.update("replacing", backup="/x.tar.gz")
    fleet = FakeFleet([container("h1")], {"h1": {"status": H1, "facts": _facts(True)}})
    run = _invoke(monkeypatch, capsys, fleet)
    code, out, err = run("ps", "--json")
    [op] = json.loads(out)["interrupted_operations"]
    assert op["instance"] == "h1" and op["step"] == "replacing" and op["fix"] == journal.RECOVER_HINT
    assert "upgrade --recover" in err
    code, out, _ = run("doctor", "--json")
    [f] = [f for f in json.loads(out)["findings"] if f["check"] == "interrupted-operation"]
    assert not f["ok"] and "upgrade --recover" in f["fix"] and code == 1


def test_ps_and_doctor_leave_out_records_of_another_endpoint_or_project(monkeypatch, capsys):
    """Issue 29: `ps --project demo` printed an interrupted upgrade of a container on another
    endpoint and project: records are shown only in the scope they were made in."""
    for name, endpoint, project in (("far-1", "ssh://ops@far", "demo"), ("h9", "default", "other")):
        record = journal.begin("upgrade", {}, {"kind": "container", "name": name, "endpoint": endpoint,
                                               "compose_project": project}, image="hermes-agent:new")
        record.body["pid"] = 2 ** 22 + 1  # its process is gone
        record.update("replacing")
    demo = container("h1")
    demo.labels["com.docker.compose.project"] = "demo"
    fleet = FakeFleet([demo], {"h1": {"status": H1, "facts": _facts(True)}})
    fleet.project = "demo"
    run = _invoke(monkeypatch, capsys, fleet)
    code, out, err = run("ps", "--json")
    assert json.loads(out)["interrupted_operations"] == [] and "interrupted" not in err
    code, out, _ = run("doctor", "--json")
    assert not [f for f in json.loads(out)["findings"] if f["check"] == "interrupted-operation"]
    fleet.project = None  # the whole endpoint: its records, whatever their project
    code, out, _ = run("ps", "--json")
    assert [op["instance"] for op in json.loads(out)["interrupted_operations"]] == ["h9"]


def _status_with(svstat_pid: int, processes: list[dict]) -> dict:
    return {"now": 100.0, "pid1": "s6-svscan", "booted": True, "processes": processes,
            "slots": {"on": {"profile": "on", "supervised": True, "status": {
                "up": True, "wanted_up": True, "normally_up": True, "pid": svstat_pid, "since": 100.0,
                "seconds": 0}}}}


def test_a_gateway_its_slot_supervisor_runs_is_not_orphaned_whatever_svstat_said_a_moment_before():
    from hermesctl.agent.probe import snapshot_from_status
    # svstat read while gateway 40 ran; the process list after a restart replaced it with 41
    restarted = snapshot_from_status(_status_with(40, [
        {"pid": 41, "ppid": 30, "profile": "on", "supervisor": "gateway-on"}]))
    assert restarted.orphans("on") == []
    # one left behind by a killed supervisor (now a child of the scanner) is orphaned
    left = snapshot_from_status(_status_with(41, [
        {"pid": 41, "ppid": 30, "profile": "on", "supervisor": "gateway-on"},
        {"pid": 12, "ppid": 1, "profile": "on", "supervisor": None}]))
    assert left.orphans("on") == [12]
    # under another slot's supervisor is not under its own; an older agent's list has no
    # supervisor: the pid rule alone
    assert snapshot_from_status(_status_with(41, [
        {"pid": 50, "ppid": 31, "profile": "on", "supervisor": "gateway-other"}])).orphans("on") == [50]
    assert snapshot_from_status(_status_with(41, [{"pid": 41, "ppid": 30, "profile": "on"}])).orphans("on") == []


# -- issue 25: state that ages and knows intent -------------------------------------------------------

def _slot(status: dict, deaths=(), operations=(), now=1000.0):
    from hermesctl.model.slots import Death, Operation, Slot, SvStatus
    base = {"up": True, "wanted_up": True, "normally_up": True, "pid": 7, "exit_code": None, "signal": None,
            "seconds": 5}
    return Slot("coder", SvStatus.from_dict({**base, **status}), None,
                tuple(Death(at, how) for at, how in deaths), now, tuple(Operation(*o) for o in operations))


KILLED_THRICE = [(980.0, "signal SIGKILL"), (988.0, "signal SIGKILL"), (994.0, "signal SIGKILL")]


def test_a_crash_loop_ages_out_of_a_held_answer():
    slot = _slot({"seconds": 5}, KILLED_THRICE)
    assert slot.crash_looping and slot.recent_deaths == 3
    later = slot.aged(300)  # five minutes on, nothing new happened
    assert not later.crash_looping and later.recent_deaths == 0 and later.status.seconds == 305
    assert later.run_state == "up"


def test_the_served_rows_are_judged_as_of_now(monkeypatch):
    """live_rows (serve, ps --watch) re-judges a held snapshot with the time since it came."""
    import threading
    from types import SimpleNamespace
    from hermesctl.engine import rows as rows_mod
    snap = SimpleNamespace(booted=True, slots={"coder": _slot({"seconds": 5}, KILLED_THRICE)}, orphans=lambda p: [])
    c = container("h1")
    live = SimpleNamespace(lock=threading.Lock(), containers={c.key: c}, snapshots={c.key: snap},
                           received={f"{c.key}/coder": 100.0}, profiles_of=lambda c, s: ["coder"],
                           unslotted_of=lambda c, s: [], unanswered={}, fleet=SimpleNamespace(endpoints=[]))
    monkeypatch.setattr(rows_mod.time, "monotonic", lambda: 101.0)
    [row] = rows_mod.live_rows(live)
    assert row.state == "crash-loop" and row.deaths_recent == 3
    monkeypatch.setattr(rows_mod.time, "monotonic", lambda: 400.0)
    [row] = rows_mod.live_rows(live)
    assert (row.state, row.crash_looping, row.deaths_recent, row.uptime_s) == ("up", False, 0, 305)


def test_a_restart_s_gap_is_not_a_crash_loop_and_its_death_is_hermesctl_s():
    during = _slot({"up": False, "pid": None, "exit_code": 0, "seconds": 0}, [(999.5, "exitcode 0")],
                   operations=[(998.0, 1030.0, "restart")])
    assert not during.crash_looping and during.run_state == "down"
    assert during.last_death == "stopped by hermesctl"
    unplanned = _slot({"up": False, "pid": None, "exit_code": 1, "seconds": 0}, [(999.5, "exitcode 1")])
    assert unplanned.crash_looping and unplanned.last_death == "exited 1"
    assert _slot({}, [(999.0, "signal SIGKILL")]).last_death == "killed by signal 9 (SIGKILL)"
    assert _slot({}, [(999.0, "exitcode 0")]).last_death == "exited 0 (planned stop)"


def test_a_down_event_says_how_the_gateway_died():
    from hermesctl.backends.docker.streams import gateway_changes
    before = _slot({})
    killed = _slot({"up": False, "pid": None, "signal": "SIGKILL", "seconds": 0}, [(999.9, "signal SIGKILL")])
    [(action, facts), *_] = gateway_changes(before, killed)
    assert action == "down" and facts["death"] == "killed by signal 9 (SIGKILL)"
    restarted = _slot({"up": False, "pid": None, "exit_code": 0, "seconds": 0}, [(999.9, "exitcode 0")],
                      operations=[(999.0, 1030.0, "restart")])
    changes = gateway_changes(before, restarted)
    assert changes[0] == ("down", {**changes[0][1], "death": "stopped by hermesctl"})
    assert "crash-loop" not in [a for a, _ in changes]


def test_the_page_words_a_death_by_what_happened():
    from hermesctl.serve.overview import in_words
    from hermesctl.serve.state import ContainerInfo, FleetState
    state = FleetState()
    info = ContainerInfo("default", "h1", None, True, None)
    row = {"target": "h1:coder", "state": "up", "pid": 7, "profile": "coder"}
    state.set_container("default/h1", info, [dict(row)])
    state.set_container("default/h1", info, [{**row, "state": "crash-loop", "pid": None,
                                              "last_death": "killed by signal 9 (SIGKILL)"}])
    state.set_container("default/h1", info, [{**row, "pid": 8}])
    state.set_container("default/h1", info, [{**row, "pid": None, "state": "down", "last_death": "stopped by hermesctl"}])
    said = [in_words(e) for e in state.snapshot().events if e["field"] == "pid"]
    assert said == ["h1:coder killed by signal 9 (SIGKILL) (pid 7)", "h1:coder started (pid 8)",
                    "h1:coder stopped by hermesctl (pid 8)"]


def test_one_operation_is_one_line_of_recent_changes():
    """Issue 29: one CLI stop made six lines on the page; it is one, saying what happened."""
    from hermesctl.serve.overview import coalesced
    t = 1000.0
    stop = [{"time": t, "target": "h1:coder", "field": "desired_state", "old": "running", "new": "stopped"},
            {"time": t + 0.2, "target": "h1:coder", "field": "wanted", "old": "up", "new": "down"},
            {"time": t + 0.5, "target": "h1:coder", "field": "state", "old": "up", "new": "down"},
            {"time": t + 0.5, "target": "h1:coder", "field": "pid", "old": 7, "new": None, "how": "stopped by hermesctl"},
            {"time": t + 0.6, "target": "h1:coder", "field": "gateway_state", "old": "running", "new": "stopped"}]
    later = [{"time": t + 60, "target": "h1:coder", "field": "pid", "old": None, "new": 9}]
    lines = coalesced(stop + later)
    assert [line["text"] for line in lines] == ["h1:coder stopped by hermesctl; hermes reports stopped",
                                                "h1:coder started (pid 9)"]
    assert lines[0]["changes"] == 5
