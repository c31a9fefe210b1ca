"""Issue 25's proof of one truth, without Docker: generated sequences of operations and faults on
a gateway, over time (Hypothesis stateful, derandomized). After every step the served row (serve,
the page, /metrics, `ps --watch`: the last answer the watcher pushed, re-judged as of now by
engine.rows.live_rows) equals the row a fresh direct `ps` would build from the agent's answer now
(engine.rows.gateway_row). The agent is modelled as s6 and hermes report: a kill or a crash is a
death (s6 restarts the gateway a second later), an operator's start, stop or restart is recorded
as an operation and its deaths are clean exits; time passes with no event at all."""
import threading
from dataclasses import asdict
from types import SimpleNamespace

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from fakefleet import container
from hermesctl.engine import rows as rows_mod
from hermesctl.model.slots import Death, Operation, Slot, SvStatus

PROFILE = "coder"


class Gateway:
    """What the agent would answer about one slot at any moment (integer seconds)."""

    def __init__(self):
        self.now, self.up, self.wanted_up, self.pid, self.since = 1_000, True, True, 100, 1_000
        self.deaths: list[tuple[int, str]] = []
        self.operations: list[tuple[int, int, str]] = []

    def answer(self) -> Slot:
        status = SvStatus(up=self.up, wanted_up=self.wanted_up, normally_up=True,
                          pid=self.pid if self.up else None, exit_code=None, signal=None,
                          seconds=self.now - self.since)
        return Slot(PROFILE, status, None, tuple(Death(float(a), h) for a, h in self.deaths[-20:]),
                    float(self.now), tuple(Operation(float(s), float(u), a) for s, u, a in self.operations[-20:]))


class ServedEqualsDirect(RuleBasedStateMachine):
    def __init__(self):
        super().__init__()
        self.gw = Gateway()
        self.c = container("h1")
        self.pushed: tuple[float, Slot] | None = None
        self.push()

    def push(self) -> None:
        """A change: the in-container watcher sends the slot as it is now."""
        self.pushed = (float(self.gw.now), self.gw.answer())

    def _die(self, how: str) -> None:
        gw = self.gw
        gw.deaths.append((gw.now, how))
        gw.up, gw.since = False, gw.now
        self.push()

    def _come_up(self) -> None:
        gw = self.gw
        gw.up, gw.pid, gw.since = True, gw.pid + 1, gw.now
        self.push()

    @rule(seconds=st.integers(min_value=1, max_value=400))
    def time_passes(self, seconds):
        self.gw.now += seconds  # no event: only the time since changes

    @precondition(lambda self: self.gw.up)
    @rule(how=st.sampled_from(["signal SIGKILL", "signal SIGSEGV", "exitcode 1"]))
    def it_dies_and_s6_restarts_it(self, how):
        self._die(how)
        self.gw.now += 1
        if self.gw.wanted_up:
            self._come_up()

    @precondition(lambda self: self.gw.up)
    @rule()
    def operator_restarts(self):
        gw = self.gw
        gw.operations.append((gw.now, gw.now + 3, "restart"))
        self._die("exitcode 0")
        gw.now += 1
        self._come_up()
        gw.now += 1

    @precondition(lambda self: self.gw.up)
    @rule()
    def operator_stops(self):
        gw = self.gw
        gw.operations.append((gw.now, gw.now + 2, "stop"))
        gw.wanted_up = False
        self._die("exitcode 0")
        gw.now += 1

    @precondition(lambda self: not self.gw.up)
    @rule()
    def operator_starts(self):
        gw = self.gw
        gw.operations.append((gw.now, gw.now + 2, "start"))
        gw.wanted_up = True
        self._come_up()
        gw.now += 1

    @invariant()
    def served_row_is_the_direct_row(self):
        received, slot = self.pushed
        snap = SimpleNamespace(booted=True, slots={PROFILE: slot}, orphans=lambda p: [])
        live = SimpleNamespace(lock=threading.Lock(), containers={self.c.key: self.c}, snapshots={self.c.key: snap},
                               received={f"{self.c.key}/{PROFILE}": received}, profiles_of=lambda c, s: [PROFILE],
                               unslotted_of=lambda c, s: [], unanswered={}, fleet=SimpleNamespace(endpoints=[]))
        clock = rows_mod.time.monotonic
        rows_mod.time.monotonic = lambda: float(self.gw.now)
        try:
            [served] = rows_mod.live_rows(live)
        finally:
            rows_mod.time.monotonic = clock
        direct = rows_mod.gateway_row(self.c, self.gw.answer(), [])
        assert asdict(served) == asdict(direct)
        # ... and so are the documents and exit codes the two paths print (one pipeline: ps_rows).
        from hermesctl.commands.ps_served import narrowed
        from hermesctl.render import ps_rows
        asked = ps_rows.document([direct], endpoints=["default"], unreachable=[], interrupted=[])
        held = narrowed(ps_rows.document([served], endpoints=["default"], unreachable=[], interrupted=[],
                                         source={"kind": "serve"}), [])
        assert held.pop("source") == {"kind": "serve"}
        assert ps_rows.document_json(held) == ps_rows.document_json(asked)
        assert ps_rows.exit_status(held) == ps_rows.exit_status(asked)


TestServedEqualsDirect = ServedEqualsDirect.TestCase


# --- one ps pipeline: the same state through all four paths --------------------------------------
# Issue 25: `ps` was built four times (commands/ps.py, quick_direct, ps_served, serve/server) with
# their own document, scope and exit rules. Here one recorded state is fed to each: the full CLI
# asking the containers (`ps --direct`), the fast direct path (quick_direct.answer over the same
# fleet), serve (its live fleet fed the same answers, published by its Refresher, served by its
# HTTP server on a unix socket) asked by the fast path (quick_ps) and by the full CLI, and the
# page's state stream. Documents, output and exit codes must be the same byte for byte; a served
# answer differs only by its `source` (and, on a terminal table, the note saying so).
import json  # noqa: E402
import socket  # noqa: E402
from dataclasses import replace  # noqa: E402

import pytest  # noqa: E402

from fakefleet import FakeFleet, cli_on, recorded  # noqa: E402
from support.fake_docker import FakeDocker, endpoint  # noqa: E402
from hermesctl.backends.docker.fleet import Unreachable  # noqa: E402
from hermesctl.backends.docker.inventory import HermesContainer  # noqa: E402
from hermesctl.backends.docker.streams import LiveFleet  # noqa: E402
from hermesctl.cli import quick_direct, quick_ps  # noqa: E402
from hermesctl.config.compose import resolve_scope  # noqa: E402
from hermesctl.core.errors import ContainerStoppedError, ExecTimeoutError  # noqa: E402
from hermesctl.engine import journal  # noqa: E402
from hermesctl.render import ps_rows  # noqa: E402
from hermesctl.serve import client  # noqa: E402
from hermesctl.serve.refresher import Refresher  # noqa: E402
from hermesctl.serve.server import App, make_servers  # noqa: E402
from hermesctl.serve.state import FleetState  # noqa: E402

STATUS = recorded("status-h1.json")
# What each container answers: the recorded status, a deadline passed, a container gone away.
FAULTS = {"late": ExecTimeoutError("late: no answer within 5s (/usr/bin/timeout)"),
          "gone": ContainerStoppedError("container gone is not running")}


def _fleet() -> FakeFleet:
    """Two endpoints that answer (`default`, `far`) and one that could not be connected to."""
    # Endpoint by endpoint, each in name order, as Docker's listings are read (inventory.list_containers)
    boxes = [container("gone"), container("h1"), container("h2"), container("late"),
             container("old", state="exited", status="Exited (1) 2 hours ago"),
             replace(container("f1"), endpoint="far"),
             # an instance a swarm wants and no node runs: listed with no container to ask
             HermesContainer(endpoint="-", id="", name="svc.2", state="pending", status="no node runs it (pending)")]
    answers = {"h1": {"status": STATUS}, "h2": {"status": STATUS}, "f1": {"status": STATUS},
               "late": {"status": FAULTS["late"]}, "gone": {"status": FAULTS["gone"]}}
    fleet = FakeFleet([c for c in boxes if c.endpoint == "default"], answers)
    far = endpoint(FakeDocker([c for c in boxes if c.endpoint == "far"], answers), "far")
    fleet.endpoints = [endpoint(fleet.docker, "default"), far]
    fleet._containers = boxes  # as listed, the swarm's pending instance among them
    fleet.unreachable.append(Unreachable("down", "cannot reach the Docker daemon at tcp://down:2376"))
    fleet.unreachable.append(Unreachable.wanted_missing(boxes[-1]))  # as the swarm's listing reports it
    return fleet


@pytest.fixture
def four_paths(tmp_path, monkeypatch, capsys):
    """run(*ps_args) -> {path: (exit code, stdout, stderr)} for the four paths over one state."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)  # no compose directory: the scope is the endpoint options alone
    sock = str(tmp_path / "serve.sock")
    monkeypatch.setenv("HERMESCTL_SOCKET", sock)
    record = journal.begin("upgrade", {}, {"kind": "container", "name": "h2", "endpoint": "default"},
                           image="hermes-agent:new")
    record.body["pid"] = 2 ** 22 + 1  # its process is gone: an interrupted operation
    record.update("replacing")

    app, servers = _serve(_fleet(), sock)
    direct_fleet = _fleet()
    full = cli_on(direct_fleet, monkeypatch, capsys)

    def quick(call) -> tuple:
        client._answers.clear()  # asked once per process; each call here is a new `hermesctl`
        code = call()
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    def run(*args: str) -> dict:
        opts = quick_ps.parse(["ps", *args])
        targets = quick_ps._valid(opts)
        client._answers.clear()
        return {"direct": full("ps", "--direct", *args),
                "quick direct": quick(lambda: quick_direct.answer(_fleet(), None, opts, targets)),
                "served": full("ps", *args),
                "quick served": quick(lambda: quick_ps.run(["ps", *args]))}

    yield run, app
    for server in servers:
        server.shutdown()
        server.server_close()


def _serve(fleet, sock: str):
    """`hermesctl serve` over `fleet` on the unix socket `sock`: its live fleet gets the answers
    its watch streams would carry, its Refresher publishes them, its server answers from its
    state. (app, servers): shut the servers down when done."""
    live = LiveFleet(fleet, [])
    for c in fleet.containers():
        live.containers[c.key] = c
        if c.name in FAULTS:
            live.did_not_answer(c, FAULTS[c.name])
        elif c.running:
            live._apply(c, {"event": "snapshot", **STATUS})
    state = FleetState()
    refresher = Refresher(fleet, state, interval=60)
    refresher.live = live
    refresher._publish_endpoints(fleet)
    refresher._publish()
    state.ready.set()
    scope = resolve_scope(hosts=[], contexts=[], project=None, fleet_file=None, swarm=None).key()
    app = App(state=state, token="t", scope=scope, act=None, log_tail=None, socket_path=sock)
    servers = make_servers(app, "127.0.0.1", 0, sock)
    for server in servers:
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    return app, servers


def _without_note(err: str) -> str:
    return "".join(line for line in err.splitlines(keepends=True) if "from hermesctl serve at" not in line)


@pytest.mark.parametrize("args", [(), ("--wide",), ("-q",), ("--no-headers", "h*"), ("h2",), ("late",),
                                  ("h1:c*", "gone"), ("old",)])
def test_every_ps_path_prints_the_same_answer_and_exit_code(four_paths, args):
    run, _ = four_paths
    got = run(*args)
    code, out, err = got["direct"]
    for path, (c, o, e) in got.items():
        assert (c, o, _without_note(e)) == (code, out, err), path
    if "-q" not in args:  # the served table says where it came from
        assert all("from hermesctl serve at" in got[p][2] for p in ("served", "quick served"))
    if not args or "late" in args:  # what did not answer is named, and the exit code is 7
        assert code == 7 and "container late did not answer in time: late: no answer within 5s" in err
    assert code == 7 and "endpoint down did not answer: cannot reach the Docker daemon" in err
    if "-q" not in args:  # three endpoints asked: the table says where each row is
        assert out.splitlines()[0].split()[0] in ("ENDPOINT", "default")
    if not args:  # the other endpoint's rows follow the first's, as they were listed
        assert [line.split()[:2] for line in out.splitlines()][-6:] == [["far", "f1"]] * 5 + [["-", "svc.2"]]
        assert "container svc.2 is pending: no node runs it (pending)" in err


@pytest.mark.parametrize("args", [(), ("h2",), ("h1:pa", "late"), ("*:c*",)])
def test_every_ps_path_builds_the_same_document(four_paths, args):
    run, _ = four_paths
    got = run("--json", *args)
    code, text, err = got["direct"]
    for path, (c, o, e) in got.items():
        doc = json.loads(o)
        assert doc.pop("source", {"kind": "serve"})["kind"] == "serve", path
        assert (c, ps_rows.document_json(doc), e) == (code, text, err), path
    whole = json.loads(text)
    if not args or "late" in args:  # what did not answer: a row and an entry, exit 7
        assert code == 7 and {(u["container"], u["reason"]) for u in whole["unreachable"]} >= {("late", "timeout")}
        assert [r["state"] for r in whole["gateways"] if r["container"] == "late"] == ["timeout"]
    if not args or "h2" in args:
        assert [op["instance"] for op in whole["interrupted_operations"]] == ["h2"]
        assert "interrupted: upgrade of h2 on default to hermes-agent:new (at step replacing)" in err


def _first_state(path: str) -> dict:
    """The page's first `state` event (GET /api/events on the unix socket)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        s.connect(path)
        s.sendall(b"GET /api/events HTTP/1.1\r\nHost: localhost\r\n\r\n")
        data = b""
        while b"\n\n" not in data.partition(b"data: ")[2]:
            data += s.recv(65536)
    return json.loads(data.partition(b"data: ")[2].partition(b"\n\n")[0])


def test_the_page_shows_the_rows_and_what_did_not_answer_of_a_direct_ps(four_paths):
    run, app = four_paths
    code, text, _ = run("--json")["direct"]
    direct = json.loads(text)
    page = _first_state(app.socket_path)
    assert code == 7
    assert page["gateways"] == direct["gateways"] and page["unreachable"] == direct["unreachable"]
    assert page["warnings"] == ps_rows.unreachable_warnings(direct) and len(page["warnings"]) == 4


def test_a_watch_stream_that_does_not_answer_is_a_container_that_did_not_answer(monkeypatch):
    """What serve's live fleet records: a running container whose stream cannot be opened is
    `did not answer` (the row and the entry a direct ps gives, exit 7) until its next line; a
    stream that answered and then broke is reopened without it."""
    from doubles import wait_until
    from hermesctl.engine.rows import live_answer

    c = container("h1")
    live = LiveFleet(FakeFleet([c], {}), [])
    live.containers[c.key] = c
    opens = []
    answered = threading.Event()

    def watch_lines(box):
        opens.append(box.name)
        if len(opens) == 1:
            raise ConnectionResetError("the exec stream could not be opened")
        yield {"event": "snapshot", **STATUS}
        answered.set()
        live._stopped.wait()  # held open, as a watcher that has nothing new to say
    monkeypatch.setattr(live, "_watch_lines", watch_lines)
    monkeypatch.setattr(live, "_still_running", lambda key: True)
    live._started[c.key] = threading.Event()
    first = threading.Event()
    threading.Thread(target=live._stream, args=(c.key, first), daemon=True).start()
    assert first.wait(10)
    rows, unreachable = live_answer(live)
    why = "the exec stream could not be opened"
    assert [(r.container, r.state, r.error) for r in rows] == [("h1", "error", why)]
    assert unreachable == [{"endpoint": "default", "message": why, "container": "h1", "reason": "error"}]
    doc = ps_rows.document(rows, endpoints=["default"], unreachable=unreachable, interrupted=[])
    assert ps_rows.exit_status(doc) == 7
    assert answered.wait(10)  # reopened: it answers again
    wait_until(lambda: live_answer(live)[1] == [], timeout=10, interval=0.05, what="the answer counts")
    assert {r.profile for r in live_answer(live)[0]} == set(STATUS["slots"])
    live.stop()


def test_a_served_answer_is_used_only_for_the_same_scope(four_paths, tmp_path, monkeypatch):
    """One scope rule (config.compose.resolve_scope) on every path: a compose directory narrows a
    request, so the answer of a server over the whole daemon is not used there, nor the other
    way round; --project names the scope wherever it is run."""
    _, app = four_paths
    here = tmp_path / "fleet"
    here.mkdir()
    (here / "compose.yaml").write_text("services: {}\n")
    monkeypatch.delenv("COMPOSE_PROJECT_NAME", raising=False)

    def scope(**given):
        return resolve_scope(**{"hosts": [], "contexts": [], "project": None, "fleet_file": None, "swarm": None,
                                **given})
    outside = scope()
    monkeypatch.chdir(here)
    inside, named = scope(), scope(project="demo")
    assert inside.here is not None and named.here is None and named.named_project == "demo"
    assert app.scope == outside.key() != inside.key()
    assert client.ps_from_server(outside.key(), again=True)["scope"] == outside.key()
    assert client.ps_from_server(inside.key(), again=True) is None
    app.scope = inside.key()  # a server started in the directory: not the answer outside it
    assert client.ps_from_server(inside.key(), again=True)["scope"] == inside.key()
    assert client.ps_from_server(outside.key(), again=True) is None
    monkeypatch.chdir(tmp_path)
    assert scope(project="demo").key() == named.key()


# --- gateway status: answered by serve when it saw every targeted gateway ----------------------
# The served answer (commands/gateway_served over the ps document) must be the direct one byte
# for byte, through both CLIs; where it cannot be sure, it gives way and the containers are asked.
from hermesctl.cli import quick_read  # noqa: E402


def _answering_fleet() -> FakeFleet:
    """Two endpoints whose running containers all answer, and a stopped container."""
    boxes = [container("h1"), container("h2"), container("old", state="exited", status="Exited (1) 2 hours ago"),
             replace(container("f1"), endpoint="far")]
    answers = {name: {"status": STATUS} for name in ("h1", "h2", "f1")}
    fleet = FakeFleet(boxes[:3], answers)
    fleet.endpoints = [endpoint(fleet.docker, "default"), endpoint(FakeDocker(boxes[3:], answers), "far")]
    fleet._containers = boxes
    fleet.configured = 2  # as build_fleet counts the endpoints asked for
    return fleet


@pytest.fixture
def gateway_paths(tmp_path, monkeypatch, capsys):
    """run(*args) -> {path: (exit code, stdout, stderr, whether the containers were asked)} of
    `gateway status ARGS` through the full CLI and the quick read path, serve running."""
    import hermesctl.cli.app as cli
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    monkeypatch.chdir(tmp_path)
    sock = str(tmp_path / "serve.sock")
    monkeypatch.setenv("HERMESCTL_SOCKET", sock)
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")  # the quick path's endpoint
    app, servers = _serve(_answering_fleet(), sock)
    asked = []

    def fleet(self):  # Run.fleet on the fake, setting the output as it does
        asked.append(True)
        self._fleet = found = _answering_fleet()
        self.out.several_endpoints = found.configured > 1
        self.out.unreachable = lambda: found.unreachable
        return found
    monkeypatch.setattr(cli.Run, "fleet", fleet)

    def full(args) -> tuple:
        with pytest.raises(SystemExit) as exit_:
            cli.main(["gateway", "status", *args])
        return exit_.value.code

    def run(*args: str) -> dict:
        got = {}
        for path, call in (("full", full), ("quick", lambda a: quick_read.run(["gateway", "status", *a]))):
            client._answers.clear()  # each call is a new `hermesctl`
            asked.clear()
            code = call(args)
            captured = capsys.readouterr()
            got[path] = (code, captured.out, captured.err, bool(asked))
        return got

    yield run, app
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize("args", [("h1",), ("h*",), ("h2:pa", "h1"), ("--json", "h*:p*"), ("f1:c*",),
                                  ("h2", "h1:coder"), ("h1:pa",), ("--json", "f1", "h1")])
def test_gateway_status_from_serve_is_the_direct_answer(gateway_paths, args):
    run, _ = gateway_paths
    code, out, err, asked = run("--direct", *args)["full"]
    assert asked and code == (0 if args == ("h1:pa",) else 3)
    assert out.splitlines()[0].split()[:2] == (["{"] if "--json" in args else ["ENDPOINT", "TARGET"])
    for path, (c, o, e, a) in run(*args).items():
        assert not a, path  # serve answered: no container was asked
        assert (c, o, _without_note(e)) == (code, out, err), path
        assert ("--json" in args) != ("from hermesctl serve at" in e), path
    assert run("--direct", *args)["quick"][3]  # --direct asks the containers on the quick path too


@pytest.mark.parametrize("args", [("*",), ("h1:nosuch",), ("old",), ("far/f1",), ("h1", "o*")])
def test_gateway_status_asks_the_containers_where_serve_cannot_be_sure(gateway_paths, args):
    """A glob over a stopped container (the direct path skips it), a missing profile (its
    error), a stopped container (its error), an endpoint named, a glob over a stopped container
    only (its error)."""
    run, _ = gateway_paths
    direct = run("--direct", *args)["full"]
    for path, got in run(*args).items():
        assert got == direct, path


def test_gateway_status_uses_only_a_server_of_the_same_scope(gateway_paths, tmp_path, monkeypatch):
    run, app = gateway_paths
    app.scope = {**app.scope, "project": "other"}
    got = run("h1")
    assert got["full"][3] and got["quick"][3]  # asked the containers: that server watches another scope
    assert "from hermesctl serve" not in got["full"][2] + got["quick"][2]


def test_gateway_status_asks_the_containers_when_the_server_does_not_answer(gateway_paths, tmp_path, monkeypatch):
    """A server that takes the connection and says nothing (hung): after serve.client's limit,
    the direct answer, as `ps` falls back."""
    run, _ = gateway_paths
    path = str(tmp_path / "silent.sock")
    with socket.socket(socket.AF_UNIX) as silent:
        silent.bind(path)
        silent.listen(4)  # connections wait in the backlog: connected, never answered
        monkeypatch.setenv("HERMESCTL_SOCKET", path)
        direct = run("--direct", "h1")["full"]
        got = run("h1")
    assert direct[0] == 3 and direct[3]
    assert got == {"full": direct, "quick": direct}


def test_a_served_document_gateway_status_cannot_be_sure_of_is_not_used():
    """What commands/gateway_served gives way on, beside the targets: anything unanswered, a
    gateway with orphaned processes, another schema (an older or newer serve), a swarm."""
    from hermesctl.commands.gateway_served import gateways
    from hermesctl.model.targets import parse_targets
    from hermesctl.render.ps_rows import GatewayRow

    def doc(rows, **extra) -> dict:
        return {**ps_rows.document(rows, endpoints=["default"], unreachable=extra.pop("unreachable", []),
                                   interrupted=[]), **extra}
    up = GatewayRow("default", "h1", None, "pa", "up", pid=7, uptime_s=60)
    assert [(g.profile, g.state, g.pid, g.uptime_s) for g in gateways(doc([up]), parse_targets(["h1"]))] == \
        [("pa", "up", 7, 60)]
    orphaned = replace(up, state=ps_rows.ORPHANED, orphan_pids=[9])
    down = {"endpoint": "far", "message": "cannot reach", "container": None, "reason": "error"}
    for held in (doc([orphaned]), doc([up], unreachable=[down]), {**doc([up]), "schema": "hermesctl.ps/v2"},
                 doc([up], scope={"swarm": "tcp://manager:2376"})):
        assert gateways(held, parse_targets(["h1"])) is None, held
