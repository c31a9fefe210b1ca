"""Commands on recorded container answers (tests/fakefleet.py): the whole CLI (typer, targets,
commands, output, exit codes) runs in-process; only the Docker half is replaced by JSON the
agent really printed. Behaviour that crosses Docker is proven in the other test files."""
import copy
import json

import pytest

import hermesctl.cli.app as cli
from hermesctl.core.errors import ExecTimeoutError
from fakefleet import FakeFleet, cli_on, container, recorded

H1 = recorded("status-h1.json")  # coder stopped, crashy crash-looping, default down, pa up, pb parked


def _healthy() -> dict:
    doc = copy.deepcopy(H1)
    doc["slots"] = {"default": {**doc["slots"]["pa"], "profile": "default"}}
    return doc


def _operate(verb: str, profile: str, old_pid: int, new_pid: int) -> dict:
    up = {"up": True, "wanted_up": True, "pid": old_pid, "exit_code": None, "signal": None, "seconds": 50}
    return {"schema": "hermes-contract/v1", "verb": verb, "waited_s": 0, "wait_rc": 0,
            "gateways": {profile: {"before": up, "after": {**up, "pid": new_pid, "seconds": 1}}}}


@pytest.fixture
def fleet():
    return FakeFleet(
        [container("h1"), container("h2"), container("h3", state="exited", status="Exited (0) 2 minutes ago"),
         container("slow")],
        {"h1": {"status": H1}, "h2": {"status": _healthy(), "operate": _operate("restart", "default", 561, 900)},
         "slow": {"status": ExecTimeoutError("slow: no answer within 3s (/opt/hermes/docker/hermes-ctl-agent)")}})


@pytest.fixture
def run(fleet, monkeypatch, capsys):
    """hermesctl ARGS in-process on the fake fleet: (exit code, stdout, stderr)."""
    return cli_on(fleet, monkeypatch, capsys)


def test_ps_judges_the_recorded_states_and_exits_3(run):
    code, out, _ = run("ps", "h1", "--json")
    assert code == 3  # crash loop and parked: something wanted up is not up
    rows = {g["profile"]: g for g in json.loads(out)["gateways"]}
    assert rows["pa"]["state"] == "up" and rows["pa"]["pid"] == 561
    assert rows["pb"]["state"] == "parked" and rows["pb"]["exit_code"] == 78
    assert rows["crashy"]["state"] == "crash-loop" and rows["crashy"]["deaths_recent"] >= 3
    assert rows["coder"]["desired_state"] == "stopped" and rows["pb"]["platforms"]["api_server"]
    assert json.loads(out)["schema"] == "hermesctl.ps/v1"


def test_ps_table_of_a_healthy_container_exits_0(run):
    code, out, _ = run("ps", "h2")
    assert code == 0
    assert out.split()[:9] == ["CONTAINER", "PROFILE", "STATE", "PID", "UPTIME", "WANTED", "GATEWAY", "DESIRED",
                               "PLATFORMS"]
    assert "h2" in out and "default" in out and " up " in out


def test_ps_selects_by_glob_and_profile(run, fleet):
    code, out, _ = run("ps", "h*:p*", "-q")
    assert code == 3 and out.split() == ["h1:pa", "h1:pb"]  # pb is parked
    fleet.calls.clear()
    code, out, _ = run("ps", "h*:pa", "-q")
    assert code == 0 and out.split() == ["h1:pa"]
    assert sorted(name for name, _ in fleet.calls) == ["h1", "h2"]  # one exec per running container matched (in parallel)
    code, out, _ = run("ps", "h3", "--json")
    assert code == 0 and json.loads(out)["gateways"][0]["state"] == "exited (0)"


def test_ps_reports_a_container_that_timed_out_and_exits_7(run):
    code, out, err = run("ps", "--json")
    assert code == 7
    doc = json.loads(out)
    assert [(u["container"], u["reason"]) for u in doc["unreachable"]] == [("slow", "timeout")]
    slow = [g for g in doc["gateways"] if g["container"] == "slow"]
    assert slow[0]["state"] == "timeout" and "3s" in slow[0]["error"]
    assert "container slow did not answer in time" in err


@pytest.mark.parametrize("args,code,message", [
    (("ps", "nomatch"), 4, "no Hermes container matches"),
    (("gateway", "status", "h1:cdoer"), 4, "did you mean coder"),
    (("gateway", "status", "h1:../x"), 6, "invalid profile"),
    (("gateway", "status", "h3"), 5, "not running"),
    (("ps", "a:b:c"), 2, ""),
])
def test_bad_targets_are_one_line_and_a_distinct_exit(run, args, code, message):
    status, out, err = run(*args)
    assert status == code, (out, err)
    assert message in err and len(err.strip().splitlines()) == 1 and out == ""


def test_gateway_status_exit_codes(run):
    assert run("gateway", "status", "h2:default")[0] == 0
    code, out, _ = run("gateway", "status", "h1:pa", "h1:pb", "--json")
    assert code == 3
    doc = json.loads(out)
    assert doc["all_up"] is False and {g["profile"]: g["state"] for g in doc["gateways"]} == {"pa": "up", "pb": "parked"}


def test_gateway_restart_judges_the_agents_report(run, fleet):
    code, out, _ = run("gateway", "restart", "h2:default", "--json")
    assert code == 0
    result = json.loads(out)["results"][0]
    assert (result["ok"], result["pid"], result["message"]) == (True, 900, "restarted")
    assert fleet.calls[-1][1][1:4] == ["operate", "restart", "default"]


def test_restart_running_only_leaves_stopped_gateways_stopped(run, fleet):
    """Issue 29: `gateway restart --rolling '*'` started gateways that had been stopped on
    purpose. --running-only restarts only those up when selected (one exec, with only them);
    the rest are reported as skipped and never reach the container. Without it a glob that
    starts stopped gateways says so on stderr."""
    fleet.answers["h1"]["operate"] = _operate("restart", "pa", 400, 401)
    code, out, _ = run("gateway", "restart", "--running-only", "--rolling", "h1", "--json")
    assert code == 0, out
    results = {r["profile"]: (r["ok"], r["message"]) for r in json.loads(out)["results"]}
    assert results.pop("pa") == (True, "restarted")
    assert set(results) == {"coder", "crashy", "default", "pb"}
    assert all(v == (True, "skipped: not running (--running-only)") for v in results.values())
    operates = [argv for name, argv in fleet.calls if argv[1] == "operate"]
    assert [a[1:4] for a in operates] == [["operate", "restart", "pa"]] and "coder" not in operates[0]
    # a container with nothing up: no exec at all
    fleet.calls.clear()
    code, out, _ = run("gateway", "restart", "--running-only", "h1:coder", "--json")
    assert code == 0 and not [argv for _, argv in fleet.calls if argv[1] == "operate"]
    assert run("gateway", "stop", "--running-only", "h1")[0] == 2  # restart's option only
    # without it, a glob that starts a stopped gateway says so
    up = {"up": True, "wanted_up": True, "pid": 9, "exit_code": None, "signal": None, "seconds": 1}
    down = {"up": False, "wanted_up": False, "pid": None, "exit_code": 0, "signal": None, "seconds": 5}
    fleet.answers["h1"]["operate"] = {"schema": "hermes-contract/v1", "verb": "restart", "waited_s": 0,
                                      "wait_rc": 0, "gateways": {"coder": {"before": down, "after": up}}}
    code, out, err = run("gateway", "restart", "h*:coder")
    assert code == 0 and "started (was stopped)" in out and "--running-only restarts only the running ones" in err


def test_a_profile_without_a_slot_is_listed_and_gateway_start_registers_it(run, fleet):
    """Issue 29: a profile made since the boot has no slot and was invisible. The agent reports
    it (`unslotted`); ps lists it as `no slot`; `gateway start C:P` selects it and the agent
    registers the slot first (`registered`); other commands say how to get a slot."""
    fleet.answers["h2"]["status"]["unslotted"] = ["fresh", "../bad", "default"]  # hostile names dropped
    code, out, _ = run("ps", "h2", "--json")
    rows = {r["profile"]: r["state"] for r in json.loads(out)["gateways"]}
    assert rows == {"default": "up", "fresh": "no slot"} and code == 0
    assert "no slot" in run("ps", "h2:fresh")[1]
    code, _, err = run("gateway", "status", "h2:fresh")
    assert code == 4 and "has no gateway slot yet" in err and "gateway start h2:fresh" in err
    code, _, err = run("gateway", "status", "h*:fresh")  # a glob over containers selects no such gateway
    assert code == 4 and "no gateway matches" in err
    down = {"up": False, "wanted_up": False, "pid": None, "exit_code": None, "signal": None, "seconds": 0}
    up = {**down, "up": True, "wanted_up": True, "pid": 77, "seconds": 1}
    fleet.answers["h2"]["operate"] = {"schema": "hermes-contract/v1", "verb": "start", "waited_s": 0, "wait_rc": 0,
                                      "gateways": {"fresh": {"before": down, "after": up}}, "registered": ["fresh"]}
    code, out, _ = run("gateway", "start", "h2:fresh", "--json")
    [result] = json.loads(out)["results"]
    assert code == 0 and result["ok"] and result["message"] == "slot registered; started", out
    assert fleet.calls[-1][1][1:4] == ["operate", "start", "fresh"]
    # a glob selects only slots: nothing is registered behind the operator's back
    fleet.calls.clear()
    assert run("gateway", "start", "h2:fr*")[0] == 4
    assert not [argv for _, argv in fleet.calls if argv[1] == "operate"]


def test_a_busy_container_is_reported_not_done(run, fleet):
    fleet.answers["h2"]["operate"] = (75, {"schema": "hermes-contract/v1", "error": {
        "code": "busy", "message": "another operation held the container's lock for 30s"}})
    code, out, _ = run("gateway", "restart", "h2:default", "--json")
    assert code == 1
    assert json.loads(out)["results"][0]["message"] == "not done: another operation held the container's lock for 30s"


def test_an_older_image_is_named_as_the_cause(run, fleet):
    fleet.answers["h2"]["status"] = {"schema": "hermes-contract/v0"}
    code, _, err = run("ps", "h2")
    assert code == 7 and "older than hermesctl" in err  # that container did not answer; the rest would


def test_version_alone():
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0


def _slot_after(change: dict, state: dict | None = None):
    from hermesctl.agent.probe import snapshot_from_status
    doc = copy.deepcopy(H1)
    doc["slots"]["pa"]["status"].update(change)
    if state is not None:
        doc["slots"]["pa"]["gateway_state"] = state
    return snapshot_from_status(doc).slots["pa"]


def test_events_name_what_changed_between_two_looks():
    from hermesctl.agent.probe import snapshot_from_status
    from hermesctl.backends.docker.streams import gateway_changes
    before = snapshot_from_status(H1).slots["pa"]
    killed = _slot_after({"up": False, "pid": None, "signal": "SIGKILL", "exit_code": None, "seconds": 0})
    assert [(a, f["signal"], f["wanted"]) for a, f in gateway_changes(before, killed)] == [("down", "SIGKILL", "up")]
    assert [a for a, _ in gateway_changes(killed, before)] == ["up"]
    assert [(a, f["pid"]) for a, f in gateway_changes(before, _slot_after({"pid": 777, "seconds": 1}))] == [
        ("restart", 777)]
    assert [a for a, _ in gateway_changes(before, _slot_after({"wanted_up": False}))] == ["want-down"]
    stopped = _slot_after({}, state={"gateway_state": "stopped", "desired_state": "stopped"})
    assert [(a, f["gateway_state"]) for a, f in gateway_changes(before, stopped)] == [("state", "stopped")]
    assert [a for a, _ in gateway_changes(None, before)] == ["add"]
    assert [a for a, _ in gateway_changes(before, None)] == ["remove"]
    assert gateway_changes(before, before) == []


def test_shell_completion_is_typers_own(capsys, monkeypatch):
    # Name the shell instead of letting typer detect it from the parent processes (a test run
    # started in the background has no shell among them).
    monkeypatch.setenv("_TYPER_COMPLETE_TEST_DISABLE_SHELL_DETECTION", "1")
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--show-completion", "bash"])
    assert exit_.value.code == 0
    assert "complete -o default -F _hermesctl_completion hermesctl" in capsys.readouterr().out


def test_the_live_table_reads_as_the_one_shot_table():
    import io

    from rich.console import Console

    from hermesctl.commands.ps import GatewayRow, render_table
    from hermesctl.render.output import Output

    rows = [GatewayRow("default", "h1", None, p, state, pid=pid, uptime_s=5 if pid else None, wanted="up")
            for p, state, pid in (("default", "up", 10), ("coder", "crash-loop", None))]

    from hermesctl.render import ps_rows

    out = Output(console=Console(file=io.StringIO(), width=300))
    out.print(render_table(out, FakeFleet([], {}), rows, wide=True))
    one_shot = io.StringIO()  # what every `ps` path prints (ps_rows.print_plain)
    ps_rows.print_plain(ps_rows.document(rows, endpoints=["default"], unreachable=[], interrupted=[]),
                        json_output=False, quiet=False, wide=True, no_headers=False, stdout=one_shot)
    assert [line.rstrip() for line in out.console.file.getvalue().splitlines()] == one_shot.getvalue().splitlines()


def test_watch_off_a_terminal_prints_the_table_once_then_each_change_as_lines(monkeypatch):
    """Issue 29: `hermesctl ps --watch > out.txt` left an empty file (a live screen needs a
    terminal). Off a terminal: the table once, then every changed row as a line, flushed as it
    comes (kubectl get -w); an uptime that merely advanced is no change, a row that goes is
    printed as removed."""
    import io
    import queue

    from rich.console import Console

    from hermesctl.commands import ps as ps_cmd
    from hermesctl.commands.ps import GatewayRow
    from hermesctl.render.output import Output

    def row(p, state, pid, up=5):
        return GatewayRow("default", "h1", None, p, state, pid=pid, uptime_s=up if pid else None, wanted="up")
    looks = iter([
        [row("default", "up", 10), row("coder", "up", 11)],
        [row("default", "up", 10, up=6), row("coder", "up", 11, up=6)],   # uptimes only
        [row("default", "up", 10, up=7), row("coder", "down", None)],      # coder went down
        [row("default", "up", 10, up=8)],                                  # coder's slot removed
    ])
    monkeypatch.setattr(ps_cmd, "live_rows", lambda live: next(looks))

    class Events:
        calls = 0

        def get(self, timeout):
            Events.calls += 1
            if Events.calls == 4:
                raise KeyboardInterrupt  # what Ctrl-C does to the loop
            raise queue.Empty

        def empty(self):
            return True
    written = io.StringIO()
    console = Console(file=written, width=4096)
    assert not console.is_terminal
    out = Output(console=console)
    live = type("Live", (), {"events": Events()})()
    with pytest.raises(KeyboardInterrupt):
        ps_cmd._watch_lines(out, FakeFleet([], {}), live, wide=False, interval=1.0)
    lines = [line.split() for line in written.getvalue().splitlines()]
    assert lines[0][:3] == ["CONTAINER", "PROFILE", "STATE"]
    assert [(l[1], l[2]) for l in lines[1:]] == [("default", "up"), ("coder", "up"), ("coder", "down"),
                                                ("coder", "removed")]


def test_a_slot_that_is_no_profile_name_is_neither_row_nor_target_and_text_is_escaped(fleet, run):
    hostile = _healthy()
    hostile["slots"]["x\x1b[2J\x1b[Hfake"] = copy.deepcopy(hostile["slots"]["default"])
    hostile["slots"]["default"]["gateway_state"] = {"gateway_state": "running\x1b]52;c;Zm9v\x07",
                                                    "platforms": {"tele\x1b[1A": {"state": "connected"}}}
    fleet.answers["h2"]["status"] = hostile
    code, out, err = run("ps", "h2:*", "--json")
    assert code == 0 and [g["profile"] for g in json.loads(out)["gateways"]] == ["default"]
    code, out, err = run("ps", "h2", "--wide")
    assert code == 0 and "\x1b" not in out + err
    assert "\\x1b]52;c;Zm9v\\x07" in out and "tele\\x1b[1A" in out
    code, out, err = run("gateway", "status", "h2:*")
    assert code == 0 and "\x1b" not in out + err


def test_a_served_ps_selects_by_the_same_rule_as_a_direct_one():
    """Issue 29: the served path matched globs on container names only; with compose names
    (`<project>-<service>-N`) `ps 'hermes-*'` found nothing there. Rows carry the service, so the
    served path now uses targets.selected_names, as the direct path does; an id prefix (rows
    have no id) still goes direct."""
    from hermesctl.commands.ps_served import _select
    from hermesctl.render.ps_rows import GatewayRow
    from hermesctl.model.targets import parse_target
    rows = [GatewayRow("default", f"demo-hermes-{i}-1", f"hermes-{i}", p, "up") for i in (1, 2) for p in ("coder", "default")]
    assert [r.target for r in _select(rows, [parse_target("hermes-*:coder")])] == \
        ["demo-hermes-1-1:coder", "demo-hermes-2-1:coder"]
    assert [r.target for r in _select(rows, [parse_target("hermes-2")])] == \
        ["demo-hermes-2-1:coder", "demo-hermes-2-1:default"]
    assert _select(rows, [parse_target("abc123")]) is None


def test_the_live_rows_list_profiles_without_a_slot_and_follow_the_watchers_word():
    """ps --watch and serve draw from the live fleet: a profile without a slot is a `no slot`
    row there too, and the watcher's `unslotted` line updates it (hostile names dropped)."""
    from hermesctl.engine.rows import live_rows
    from hermesctl.agent.probe import snapshot_from_status
    from hermesctl.backends.docker.streams import LiveFleet
    from hermesctl.model.targets import parse_target
    h2 = container("h2")
    live = LiveFleet(FakeFleet([h2], {}), [])
    live.containers[h2.key] = h2
    live.snapshots[h2.key] = snapshot_from_status({**_healthy(), "unslotted": ["fresh"]})
    assert [(r.profile, r.state) for r in live_rows(live)] == [("default", "up"), ("fresh", "no slot")]
    live._apply(h2, {"event": "unslotted", "unslotted": ["fresh", "later", "../x"]})
    assert [(r.profile, r.state) for r in live_rows(live)] == [("default", "up"), ("fresh", "no slot"),
                                                               ("later", "no slot")]
    only = LiveFleet(FakeFleet([h2], {}), [parse_target("h2:later")])
    only.containers, only.snapshots = live.containers, live.snapshots
    assert [(r.profile, r.state) for r in live_rows(only)] == [("later", "no slot")]


# -- issue 25: a start judges what follows -----------------------------------------------------------

def _three_containers_restarting(fleet, second: dict):
    """Rolling restart over h2, h4, h5 where h4 answers `second` for its default gateway."""
    for name in ("h4", "h5"):
        fleet.docker.listed.append(container(name))  # Docker lists two more
        fleet.answers[name] = {"status": _healthy(), "operate": _operate("restart", "default", 561, 900)}
    fleet.answers["h4"]["operate"]["gateways"]["default"].update(second)
    fleet.refresh()  # as a new run would: the list is read again


def test_a_gateway_that_dies_after_it_started_is_a_failed_start_and_rolling_stops(run, fleet):
    up = {"up": True, "wanted_up": True, "exit_code": None, "signal": None}
    # Started as pid 900, died (a port clash, say), and s6 brought up pid 901 before the settle ended.
    _three_containers_restarting(fleet, {"acted": {**up, "pid": 900, "seconds": 0},
                                         "after": {**up, "pid": 901, "seconds": 0}})
    code, out, err = run("gateway", "restart", "--rolling", "h2", "h4", "h5", "--json")
    assert code == 1, (out, err)
    results = {r["container"]: r for r in json.loads(out)["results"]}
    assert results["h4"]["ok"] is False and "died after it started" in results["h4"]["message"]
    assert "h5" not in results and "not touched: h5" in err
    assert "--wait-ready" in fleet.calls[-1][1]  # rolling waits for hermes' own verdict


def test_hermes_verdict_on_a_start_decides(run, fleet):
    up = {"up": True, "wanted_up": True, "pid": 900, "exit_code": None, "signal": None, "seconds": 2}
    _three_containers_restarting(fleet, {"acted": up, "after": up, "startup": "failed"})
    code, out, _ = run("gateway", "restart", "h4", "--wait-ready", "--json")
    assert code == 1 and "start failed" in json.loads(out)["results"][0]["message"]


@pytest.mark.parametrize("wanted_up, says", [(False, "started (was stopped)"),
                                            (True, "started (was down: it had not stayed up)")])
def test_restart_says_was_stopped_only_when_it_was(run, fleet, wanted_up, says):
    down = {"up": False, "wanted_up": wanted_up, "pid": None, "exit_code": 1, "signal": None, "seconds": 3}
    up = {"up": True, "wanted_up": True, "pid": 900, "exit_code": None, "signal": None, "seconds": 1}
    fleet.answers["h2"]["operate"]["gateways"]["default"] = {"before": down, "acted": up, "after": up}
    fleet.answers["h2"]["status"]["slots"]["default"]["status"].update(down)  # as ps saw it too
    code, out, _ = run("gateway", "restart", "h2:default", "--json")
    assert code == 0 and json.loads(out)["results"][0]["message"] == says
