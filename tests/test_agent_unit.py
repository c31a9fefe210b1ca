"""The container's half of the contract (image/hermes/docker/hermes_supervise), run on the host against
a temporary HERMES_HOME and scan directory: s6's files are written here in s6 2.11's formats
(checked against s6-svstat and s6-svdt in tests/test_contract.py), so no s6 program is needed."""
import json
import os
import select
import struct
import sys
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "image" / "hermes" / "docker"))

from hermes_supervise import agent, contract, fastjson, queries, snapshot, watcher  # noqa: E402
from hermes_supervise.s6state import parse_deaths  # noqa: E402

FIXTURES = Path(__file__).parent / "fixtures"
TAI = (1 << 62) + 37


def _tai(unix: float) -> tuple[int, int]:
    return int(unix) + TAI, int(round(unix % 1 * 1e9))


class Container:
    """A fake container's files: HERMES_HOME, the scan directory and s6's supervise/ files."""

    def __init__(self, tmp: Path, monkeypatch):
        self.home, self.scandir = tmp / "data", tmp / "service"
        self.home.mkdir()
        self.scandir.mkdir()
        self.readers: list[int] = []
        monkeypatch.setenv("HERMES_HOME", str(self.home))
        monkeypatch.setattr(contract, "SCANDIR", str(self.scandir))
        monkeypatch.setattr(contract, "BOOTED_MARKER", str(tmp / "stage2-done"))

    def slot(self, profile: str, *, pid: int = 0, wstat: int = 0, want_up: bool = False, since: float = 1000.0,
             supervised: bool = True, down: bool = False) -> Path:
        d = self.scandir / f"gateway-{profile}"
        (d / "supervise").mkdir(parents=True, exist_ok=True)
        if down:
            (d / "down").touch()
        s, ns = _tai(since)
        tmp = d / "supervise" / "status.new"
        tmp.write_bytes(struct.pack(">QLQLQHB", s, ns, s, ns, pid, wstat, 0x04 if want_up else 0))
        tmp.rename(d / "supervise" / "status")
        control = d / "supervise" / "control"
        if supervised and not control.exists():
            os.mkfifo(control)
            self.readers.append(os.open(control, os.O_RDONLY | os.O_NONBLOCK))  # as s6-supervise holds it
        return d

    def deaths(self, profile: str, records: list[tuple[float, int, int]]) -> None:
        raw = b"".join(struct.pack(">QLBB", *_tai(at), code, sig) for at, code, sig in records)
        (self.scandir / f"gateway-{profile}" / "supervise" / "death_tally").write_bytes(raw)

    def profile(self, name: str, *, soul: bool = True, state: str | None = None) -> Path:
        d = self.home if name == "default" else self.home / "profiles" / name
        d.mkdir(parents=True, exist_ok=True)
        if soul:
            (d / "SOUL.md").write_text("soul\n")
        if state is not None:
            (d / "gateway_state.json").write_text(state)
        return d

    def close(self):
        for fd in self.readers:
            os.close(fd)


@pytest.fixture
def box(tmp_path, monkeypatch):
    c = Container(tmp_path, monkeypatch)
    yield c
    c.close()


def test_status_reads_every_slot_as_s6_svstat_would(box, monkeypatch):
    monkeypatch.setattr(snapshot.time, "time", lambda: 1100.0)
    box.slot("up", pid=4321, want_up=True, since=1090.5)
    box.slot("parked", wstat=78 << 8, since=1050)
    box.slot("killed", wstat=9, want_up=True, since=1099)
    box.slot("lost", supervised=False)
    box.slot("off", down=True)
    box.profile("up", state='{"gateway_state": "running", "desired_state": "running", "platforms": {}}')
    box.profile("parked", state="{not json")
    doc = snapshot.status()
    assert doc["schema"] == "hermes-contract/v1" and doc["now"] == 1100.0 and not doc["booted"]
    slots = doc["slots"]
    assert sorted(slots) == ["killed", "lost", "off", "parked", "up"]
    assert slots["up"]["status"] == {"up": True, "wanted_up": True, "normally_up": True, "pid": 4321,
                                     "exit_code": None, "signal": None, "since": 1090.5, "seconds": 9}
    assert slots["up"]["gateway_state"]["gateway_state"] == "running"
    assert slots["parked"]["status"]["exit_code"] == 78 and slots["parked"]["gateway_state_corrupt"]
    assert slots["killed"]["status"]["signal"] == "SIGKILL" and slots["killed"]["status"]["exit_code"] is None
    assert slots["lost"] == {**slots["lost"], "supervised": False, "status": None}
    assert slots["off"]["status"]["normally_up"] is False
    fastjson.loads(fastjson.dumps(doc))  # what the agent prints is JSON


def test_deaths_are_the_last_ten_worded_as_s6_svdt_does(box):
    box.slot("loop", want_up=True)
    box.deaths("loop", [(1000 + i, 1, 0) for i in range(11)] + [(1020.25, 0, 9)])
    deaths = snapshot.slot("loop", 1030)["deaths"]
    assert len(deaths) == 10 and deaths[-1] == {"at": 1020.25, "how": "signal SIGKILL"}
    assert deaths[0] == {"at": 1002.0, "how": "exitcode 1"}
    assert parse_deaths(b"\x00" * 13, 10) == []  # a torn record is not a death


def test_a_fifo_left_by_hermes_does_not_block_the_agent(box):
    box.slot("coder")
    os.mkfifo(box.profile("coder") / "gateway_state.json")
    result = {}
    worker = threading.Thread(target=lambda: result.update(doc=snapshot.status()), daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the agent blocked on a FIFO"
    assert result["doc"]["slots"]["coder"]["gateway_state"] is None


def test_operation_records_are_parsed_strictly(box):
    box.slot("coder")
    ops = box.home / ".hermesctl" / "operations"
    ops.mkdir(parents=True)
    (ops / "coder").write_text("1000.5 1002.0 restart\nrm -rf / now\n1 2 STOP\n3 4 start extra\n5 6 stop\n")
    assert snapshot.slot("coder", 1010)["operations"] == [
        {"start": 1000.5, "until": 1002.0, "action": "restart"}, {"start": 5.0, "until": 6.0, "action": "stop"}]


def test_profiles_and_boot_log(box):
    box.profile("coder")
    box.profile("draft", soul=False)
    box.slot("coder")
    (box.home / "profiles" / ".hidden").mkdir()
    doc = queries.profiles()
    assert [(p["name"], p["has_soul"], p["registered"]) for p in doc["profiles"]] == [
        ("coder", True, True), ("draft", False, False)]
    (box.home / "logs").mkdir()
    (box.home / "logs" / "container-boot.log").write_text((FIXTURES / "container-boot.log").read_text())
    entries = queries.boot_log(3)["entries"]
    assert len(entries) <= 3 and all("profile" in e and e["time"] for e in entries)
    assert queries.parse_boot_line("2026-05-21T06:18:05+0000 profile=coder prior_state=running action=started") == {
        "time": "2026-05-21T06:18:05+0000", "profile": "coder", "prior_state": "running", "action": "started"}
    assert queries.parse_boot_line("garbage") is None


def test_the_watcher_reports_each_change_once(box):
    lines: list[dict] = []
    w = watcher.Watcher(lambda line: lines.append(json.loads(line)), clock=lambda: 1100.0)
    box.slot("coder", want_up=True, pid=10)
    w.start()
    assert [l["event"] for l in lines] == ["snapshot"] and "coder" in lines[0]["slots"]
    w.compare()
    assert len(lines) == 1  # nothing changed, nothing said
    box.slot("coder", want_up=False, wstat=15, since=1099)  # s6-svc -d: down by SIGTERM
    w.compare()
    assert lines[-1]["event"] == "slot" and lines[-1]["slot"]["status"]["signal"] == "SIGTERM"
    box.profile("coder", state='{"gateway_state": "stopped"}')
    w.compare()
    assert lines[-1]["slot"]["gateway_state"] == {"gateway_state": "stopped"}
    box.slot("writer")
    w.compare()
    assert (lines[-1]["event"], lines[-1]["profile"]) == ("slot-added", "writer")
    (box.scandir / "gateway-writer").rename(box.scandir / ".gateway-writer.removing")
    w.compare()
    assert (lines[-1]["event"], lines[-1]["profile"]) == ("slot-removed", "writer")
    assert all(l["schema"] == "hermes-contract/v1" for l in lines)


def test_inotify_wakes_the_watcher_on_a_status_rename(box):
    d = box.slot("coder")
    notify = watcher.Inotify()
    notify.watch(str(d / "supervise"))
    assert select.select([notify.fd], [], [], 0)[0] == []
    box.slot("coder", pid=5)  # s6-supervise writes status.new and renames it
    assert select.select([notify.fd], [], [], 5)[0] == [notify.fd]
    notify.drain()
    snapshot.status()  # our own reads (and the control FIFO probe) must not wake us
    assert select.select([notify.fd], [], [], 0.2)[0] == []


@pytest.mark.parametrize("argv,code,exit_status", [
    (["frobnicate"], "usage", 2),
    (["tail", "../etc"], "invalid-name", 6),
    (["register", "ghost"], "not-found", 4),
    (["boot-log", "--tail", "x"], "usage", 2),
])
def test_agent_failures_are_json_with_a_code(box, capsys, argv, code, exit_status):
    assert agent.main(argv) == exit_status
    doc = json.loads(capsys.readouterr().out)
    assert doc["schema"] == "hermes-contract/v1" and doc["error"]["code"] == code and doc["error"]["message"]


def test_agent_answers_status_as_one_document(box, capsys):
    box.slot("default", pid=7, want_up=True)
    assert agent.main(["status"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["verb"] == "status" and doc["slots"]["default"]["status"]["pid"] == 7


def test_fastjson_matches_json():
    value = {"a": [1, 2.5, None, True, "é\n\""], "b": {"c": -1}}
    assert json.loads(fastjson.dumps(value)) == value
    assert fastjson.loads(" " + json.dumps(value) + "\n") == value
    for bad in ("{not", "[1] x", ""):
        with pytest.raises(ValueError):
            fastjson.loads(bad)


def test_health_is_judged_on_wanted_up_gateways(box, monkeypatch, tmp_path):
    monkeypatch.setattr(snapshot, "pid1", lambda: "s6-svscan")
    box.slot("ok", pid=5, want_up=True)
    box.slot("off", down=True)
    assert queries.health()[0]["problems"] == ["boot has not finished"]
    (tmp_path / "stage2-done").touch()
    assert queries.health()[1] is True
    box.slot("parked", wstat=78 << 8)
    box.slot("crash", want_up=True, wstat=1 << 8)
    doc, healthy = queries.health()
    assert not healthy and doc["problems"] == ["crash:down-but-wanted-up", "parked:parked-exit-78"]
    box.profile("parked", state='{"desired_state": "stopped"}')  # parked on purpose: fine
    assert queries.health()[0]["problems"] == ["crash:down-but-wanted-up"]


def test_only_hermes_itself_counts_as_a_gateway_process():
    """Stage 2's shell of a `gateway run` CMD carries the words too; it is not a gateway."""
    from hermes_supervise.snapshot import _is_gateway_run
    assert _is_gateway_run(["/opt/hermes/.venv/bin/python3", "/opt/hermes/.venv/bin/hermes", "gateway", "run", "--replace"])
    assert _is_gateway_run(["/opt/hermes/.venv/bin/python3", "/opt/hermes/.venv/bin/hermes", "-p", "coder", "gateway", "run"])
    assert _is_gateway_run(["hermes", "--profile=coder", "gateway", "run"])
    assert not _is_gateway_run(["/bin/sh", "/etc/hermes-init/stage2", "/opt/hermes/docker/main-wrapper.sh", "gateway", "run"])
    assert not _is_gateway_run(["sh", "-c", "hermes gateway run"])
    assert not _is_gateway_run(["hermes", "-p"])
    assert not _is_gateway_run(["hermes", "gateway", "status"])


def test_env_values_without_a_utf8_form_are_refused_before_writing(tmp_path):
    from hermes_supervise.envfile import EnvValueError, problem, set_env
    path = tmp_path / ".env"
    path.write_text("KEEP=1\n")
    for value in ("a\ud800b", "\udcff", "x\udfff"):
        assert "surrogate" in problem("TOKEN", value)
        with pytest.raises(EnvValueError):
            set_env(path, {"TOKEN": value})
    assert path.read_text() == "KEEP=1\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [".env"]


def test_the_watcher_ends_as_soon_as_its_stdin_closes(tmp_path):
    """Through Docker a write to a gone host never fails; the closed stdin is the signal."""
    import subprocess
    import time
    (tmp_path / "data").mkdir()
    (tmp_path / "service").mkdir()
    script = (f"import sys; sys.path.insert(0, {str(ROOT / 'image' / 'hermes' / 'docker')!r})\n"
              "from hermes_supervise import contract, watcher\n"
              f"contract.SCANDIR = {str(tmp_path / 'service')!r}\n"
              f"contract.BOOTED_MARKER = {str(tmp_path / 'stage2-done')!r}\n"
              f"watcher.run(lifeline=True)\n")
    proc = subprocess.Popen([sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env={**os.environ, "HERMES_HOME": str(tmp_path / "data")})
    try:
        assert json.loads(proc.stdout.readline())["event"] == "snapshot"
        proc.stdin.write(b"ignored\n")  # anything the host might send is not an end
        proc.stdin.flush()
        time.sleep(0.3)
        assert proc.poll() is None
        closed = time.monotonic()
        proc.stdin.close()
        assert proc.wait(timeout=5) == 0
        assert time.monotonic() - closed < 1.5
    finally:
        proc.kill()


def test_profiles_without_a_slot_follow_the_reconcilers_rule(box, tmp_path):
    """Issue 29: a profile made since the boot (`hermes profile install`, copied in, a bind-mounted
    home) has no slot and was invisible. `status` lists it in `unslotted[]`, under the rule the
    reconciler registers slots by (names.slot_refusal): a real directory, a profile name (not
    `default`), SOUL.md; the watcher says when that list changes."""
    from hermes_supervise import reconcile
    from hermes_supervise.names import slot_refusal
    box.slot("coder")
    box.profile("coder")
    box.profile("fresh")                         # qualifies, no slot
    box.profile("nosoul", soul=False)
    (tmp_path / "elsewhere").mkdir()
    (tmp_path / "elsewhere" / "SOUL.md").write_text("x")
    (box.home / "profiles" / "linked").symlink_to(tmp_path / "elsewhere")
    (box.home / "profiles" / "Upper").mkdir()
    (box.home / "profiles" / "Upper" / "SOUL.md").write_text("x")
    (box.home / "profiles" / "default").mkdir()
    (box.home / "profiles" / "default" / "SOUL.md").write_text("x")
    (box.home / "profiles" / ".hidden").mkdir()
    doc = snapshot.status()
    assert doc["unslotted"] == ["fresh"] and "fresh" not in doc["slots"]
    home = str(box.home)
    assert {n: slot_refusal(home, n) for n in ("fresh", "nosoul", "linked", "Upper", "default", "ghost")} == {
        "fresh": None, "nosoul": "no-SOUL.md", "linked": "not-a-directory", "Upper": "invalid-name",
        "default": "reserved-name", "ghost": "no-such-profile"}
    # the reconciler's own candidates are the same verdicts
    assert dict(reconcile._candidates(box.home)) == {"coder": None, "default": "reserved-name", "fresh": None,
                                                      "linked": "not-a-directory", "nosoul": "no-SOUL.md",
                                                      "Upper": "invalid-name"}
    lines: list[dict] = []
    w = watcher.Watcher(lambda line: lines.append(json.loads(line)), clock=lambda: 1100.0)
    w.start()
    assert lines[0]["unslotted"] == ["fresh"]
    box.profile("later")
    w.scan_processes()
    assert (lines[-1]["event"], lines[-1]["unslotted"]) == ("unslotted", ["fresh", "later"])
    box.slot("fresh")                             # registered: it leaves the list with its slot
    w.compare()
    assert [l["event"] for l in lines[-2:]] == ["slot-added", "unslotted"] and lines[-1]["unslotted"] == ["later"]


@pytest.mark.parametrize("argv,env,active,expected", [
    (["-p", "coder", "gateway", "start"], {}, None, ("coder", True)),
    (["gateway", "start", "--profile", "coder"], {}, None, ("coder", True)),
    (["--profile=coder", "gateway", "start"], {}, None, ("coder", True)),
    (["-m", "-p", "gateway", "start"], {}, "coder", ("coder", True)),      # -p is -m's value
    (["gateway", "start"], {}, "coder", ("coder", True)),                  # hermes profile use coder
    (["gateway", "start"], {}, None, ("default", False)),
    (["gateway", "start"], {"HERMES_HOME": "/opt/data/profiles/coder"}, None, ("coder", True)),
    (["-p", "coder", "gateway", "stop"], {}, None, None),                  # only start registers
    (["-p", "coder", "gateway", "start", "--all"], {}, None, None),
    (["chat", "-q", "gateway start"], {}, None, None),
    (["-p", "nosoul", "gateway", "start"], {}, None, ("nosoul", False)),   # the reconciler's rule
    (["-p", "../x", "gateway", "start"], {}, None, ("default", False)),   # hermes ignores it too
])
def test_ensure_slot_finds_the_profile_as_hermes_does(box, monkeypatch, argv, env, active, expected):
    """`hermes … gateway start` in the container: the wrapper's `ensure-slot` registers the slot
    of the profile that command line names, only under the reconciler's rule."""
    from hermes_supervise import ensure_slot, operations
    box.profile("coder")
    box.profile("nosoul", soul=False)
    if active:
        (box.home / "active_profile").write_text(active + "\n")
    made = []
    monkeypatch.setattr(operations, "register_missing", lambda names: made.extend(names) or names)
    monkeypatch.setattr(ensure_slot, "under_s6", lambda: True)
    found = ensure_slot.ensure_slot(argv, env, str(box.home))
    if expected is None:
        assert found == (None, False) and made == []
    else:
        assert found == expected and made == ([expected[0]] if expected[1] else [])


def test_ensure_slot_does_nothing_without_s6_as_pid_1(box, monkeypatch):
    """`--entrypoint hermes`: nothing supervises /run/service, and hermes does not go to s6."""
    from hermes_supervise import ensure_slot
    box.profile("coder")
    monkeypatch.setattr(ensure_slot, "under_s6", lambda: False)
    assert ensure_slot.ensure_slot(["-p", "coder", "gateway", "start"], {}, str(box.home)) == (None, False)


def test_held_open_streams_are_read_line_by_line_with_bounded_memory():
    # The watch, usage-watch and followed-log streams share one splitter: lines across chunks,
    # and a run without a newline given out once it passes the bound instead of growing.
    from hermesctl.agent.client import stream_lines
    chunks = [b"ab", b"c\nde", b"f\n", b"x" * 10, b"y" * 10, b"\nlast"]
    # (the cut run's own newline then ends an empty line; a last line without one is not given out)
    assert list(stream_lines(chunks, max_line=15)) == [b"abc", b"def", b"x" * 10 + b"y" * 10, b""]


def test_a_stream_document_without_a_line_end_is_an_error_not_a_growing_buffer(monkeypatch):
    import pytest

    from hermesctl.agent import client
    from hermesctl.core.errors import ExecError
    monkeypatch.setattr(client, "STREAM_LINE_MAX_BYTES", 64)
    doc = b'{"schema": "%s", "event": "snapshot"}\n' % client.SCHEMA.encode()
    stream = client.stream_documents([doc, b"z" * 40, b"z" * 40], where="c1")
    assert next(stream)["event"] == "snapshot"
    with pytest.raises(ExecError, match="without a line's end"):
        next(stream)
