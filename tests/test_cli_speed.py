"""What a command imports (issue 18): `ps` answered by `hermesctl serve` imports neither the
Docker SDK nor rich nor typer; no command imports the SDK's ssh transport (paramiko) unless an
endpoint is ssh://, nor pydantic for plain options. Checked on the modules the real CLI
imports in a subprocess (sys.modules when it exits), never on timings. No Docker needed: the
server here is a stand-in on a unix socket answering a recorded ps document (tests/test_fleet_scale.py
runs the real `hermesctl serve`)."""
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from cli_modules import run_cli
from hypothesis import given, settings
from hypothesis import strategies as st

from hermesctl.cli import values as cli_values
from hermesctl.cli import quick_ps
from support.unix_http import UnixHTTPServer

ROOT = Path(__file__).resolve().parents[1]
SCOPE = {"hosts": [], "contexts": [], "project": "speedtest", "fleet_file": None, "swarm": None}
HEAVY = ("docker", "rich", "typer", "click", "pydantic", "requests", "urllib3", "paramiko",
         "hermesctl.cli.app", "hermesctl.backends.docker.fleet", "hermesctl.config.endpoints", "http.client")


def _row(container: str, profile: str | None, state: str, **extra) -> dict:
    return {"endpoint": "default", "container": container, "service": None, "profile": profile, "state": state,
            "pid": 41 if state == "up" else None, "uptime_s": 5 if state == "up" else None,
            "wanted": "up" if state == "up" else "down", "crash_looping": False, "parked": False,
            "exit_code": None, "deaths_recent": 0, "gateway_state": None, "desired_state": None,
            "platforms": None, "health": None, "error": None, "orphan_pids": None,
            "target": f"{container}:{profile}" if profile else container, "restarts_seen": 0, **extra}


def _document(rows: list[dict], scope: dict = SCOPE) -> dict:
    return {"schema": "hermesctl.ps/v1", "gateways": rows, "unreachable": [], "scope": scope,
            "source": {"kind": "serve", "socket": "stand-in", "age_s": 0.1}}


@pytest.fixture
def stand_in(tmp_path):
    """A unix-socket HTTP server answering /api/ps with `server.document`."""
    path = str(tmp_path / "serve.sock")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            body = json.dumps(server.document).encode()
            self.send_response(200 if self.path == "/api/ps" else 404)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = UnixHTTPServer(path, Handler)
    server.document = _document([_row("web-1", "default", "up"), _row("web-1", "coder", "down"),
                                 _row("web-2", "default", "up")])
    server.path = path
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


def _cli(*args: str, socket_path: str, env: dict | None = None, **kwargs) -> tuple[int, str, str, set[str]]:
    """hermesctl ARGS as a user runs it: (exit code, stdout, stderr, the modules it imported)."""
    return run_cli(args, modules_file=Path(socket_path).with_name("modules.json"), env={
        "HERMESCTL_SOCKET": socket_path, "DOCKER_HOST": "unix:///nonexistent/docker.sock", **(env or {})}, **kwargs)


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


def test_ps_answered_by_serve_imports_no_docker_sdk_rich_or_typer(stand_in):
    code, out, err, modules = _cli("-p", "speedtest", "ps", socket_path=stand_in.path)
    assert code == 0, err
    assert [line.split()[:3] for line in out.splitlines()] == [
        ["CONTAINER", "PROFILE", "STATE"], ["web-1", "default", "up"], ["web-1", "coder", "down"],
        ["web-2", "default", "up"]]
    assert "from hermesctl serve at stand-in" in err
    assert "hermesctl.commands.ps_served" in modules
    assert _heavy(modules) == []


@pytest.mark.parametrize("args,rows,status", [
    (("ps", "--json", "web-1"), ["web-1:default", "web-1:coder"], 0),
    (("ps", "-q", "*:default"), ["web-1:default", "web-2:default"], 0),
    (("ps", "web-2:default", "--timeout", "3", "--no-headers"), ["web-2"], 0),
])
def test_served_ps_options_and_targets_on_the_quick_path(stand_in, args, rows, status):
    code, out, err, modules = _cli("--project", "speedtest", *args, socket_path=stand_in.path)
    assert code == status, err
    if "--json" in args:
        doc = json.loads(out)
        assert [g["target"] for g in doc["gateways"]] == rows and doc["source"]["kind"] == "serve"
    else:
        assert [line.split()[0] for line in out.splitlines()] == rows
    assert _heavy(modules) == []


def test_served_ps_exit_3_when_a_wanted_gateway_is_down_and_text_from_containers_is_escaped(stand_in):
    stand_in.document = _document([_row("web-1", "default", "down", wanted="up",
                                        gateway_state="\x1b]0;owned\x07\x1b[2J")])
    code, out, err, modules = _cli("-p", "speedtest", "ps", socket_path=stand_in.path)
    assert code == 3, err
    assert "\x1b" not in out and "\\x1b]0;owned\\x07" in out
    assert _heavy(modules) == []


@pytest.mark.parametrize("args", [
    ("ps", "--watch"), ("ps", "--help"), ("ps", "-wq"), ("ps", "--json=1"),
    ("ps", "--", "x"), ("gateway", "status", "x:y"), ("-H", "", "ps"), ("ps", "--timeout", "0"),
    ("ps", "x:Bad!"), ("--project", "Bad", "ps"), ("ps", "--timeout"), ("--version",), (),
])
def test_anything_but_a_plain_ps_goes_to_the_full_cli(args):
    opts = quick_ps.parse(list(args))
    assert opts is None or quick_ps._valid(opts) is None


def test_a_scope_the_server_does_not_watch_goes_direct(stand_in):
    # The server watches project speedtest; this ps asks for another one: the containers are
    # asked directly (here: no daemon at DOCKER_HOST, exit 69), having asked the server only
    # once, still without the full CLI (a local socket: hermesctl.cli.quick_direct).
    code, _, err, modules = _cli("-p", "other", "ps", socket_path=stand_in.path)
    assert code == 69 and "cannot reach the Docker daemon at unix:///nonexistent/docker.sock" in err
    assert "from hermesctl serve" not in err and "hermesctl.cli.quick_direct" in modules
    assert [m for m in _heavy(modules) if m not in ("hermesctl.backends.docker.fleet", "hermesctl.config.endpoints")] == []


def test_direct_commands_import_no_ssh_transport_and_no_pydantic(tmp_path):
    # ps on a tcp:// endpoint: the full CLI (hermesctl.cli.quick_direct covers local sockets only).
    for args in (("-H", "tcp://127.0.0.1:1", "ps"), ("gateway", "status", "x:default", "--timeout", "2.5"),
                 ("logs", "-n", "5", "x"), ("events",)):
        code, _, err, modules = _cli(*args, socket_path=str(tmp_path / "none.sock"))
        assert code == 69 and "cannot reach the Docker daemon" in err, (args, err)
        if args[0] == "-H":  # the full CLI, through the SDK
            assert "docker" in modules and "hermesctl.cli.app" in modules
        else:  # the read commands on the local socket: the quick read path, without the SDK
            assert "hermesctl.cli.quick_read" in modules and "docker" not in modules and "hermesctl.cli.app" not in modules
        leaked = sorted(m for m in modules if m.split(".")[0] in ("paramiko", "pydantic", "pydantic_core")
                        or m == "docker.transport.sshconn")
        assert leaked == [], args


def test_an_ssh_endpoint_still_gets_the_sdk_ssh_transport():
    # The transport is left out of `import docker` and handed to the SDK at the first ssh:// connect.
    script = """
import sys
import hermesctl, docker
assert "docker.transport.sshconn" not in sys.modules
from hermesctl.backends.docker import sshcompat
sshcompat.install()
import docker.transport.sshconn as sshconn
client = docker.APIClient(base_url="ssh://nobody@127.0.0.1:1", use_ssh_client=True, version="1.41")
assert isinstance(client._custom_adapter, sshconn.SSHHTTPAdapter)
assert sshconn.SSHSocket.close is sshcompat._close_tolerating_exited_ssh
print("ok")
"""
    res = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                         env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert res.returncode == 0, res.stderr
    assert res.stdout == "ok\n"


NUMBERS = ["0", "7", "-3", "10", "007", "1.5", "-0.25", "20.0", "1e3", " 5", "5 ", "1_000", "+4", "nan", "inf",
           "0x10", "", "-", "1.", ".5", "٣", "12345678901234567890", "3.14159265358979323846"]


@pytest.mark.parametrize("kind", [int, float])
@pytest.mark.parametrize("text", NUMBERS)
def test_plain_numbers_convert_exactly_as_typers_pydantic_or_are_left_to_it(kind, text):
    from pydantic import TypeAdapter, ValidationError
    mine = cli_values._plain_value(kind.__name__, text)
    if mine is cli_values._UNSET:
        return  # typer's own conversion decides (and errs) as before
    try:
        theirs = TypeAdapter(kind).validate_python(text)
    except ValidationError:
        pytest.fail(f"{text!r}: converted to {mine!r}, which pydantic refuses")
    assert (type(mine), mine) == (type(theirs), theirs)


@settings(derandomize=True, max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789-+._e ", max_size=8), st.sampled_from([int, float]))
def test_plain_numbers_fuzzed_against_pydantic(text, kind):
    test_plain_numbers_convert_exactly_as_typers_pydantic_or_are_left_to_it(kind, text)


def test_plain_str_and_list_values_are_passed_through_and_others_left_to_typer():
    assert cli_values._plain_value("str", "a:b") == "a:b"
    assert cli_values._plain_value("list", ("a", "b")) == ["a", "b"]
    assert cli_values._plain_value("bool", True) is True
    assert cli_values._plain_value("bool", "yes") is cli_values._UNSET
    assert cli_values._plain_value("int", True) is cli_values._UNSET
    assert cli_values._plain_value("str", b"x") is cli_values._UNSET


def test_execs_wait_their_turn_per_endpoint_and_the_deadline_starts_with_it():
    # Bound 2, three execs of 2 s each: the third starts at 2 s and ends at 4 s, past its
    # 0.1 s + grace deadline had that counted from the queue (hermesctl.backends.docker.execs.run).
    from concurrent.futures import ThreadPoolExecutor

    from fakefleet import container
    from hermesctl.agent.contract import AGENT
    from hermesctl.backends.docker import execs
    from hermesctl.backends.docker.endpoint import Endpoint
    from hermesctl.config.endpoints import EXEC_CONCURRENCY
    from support.fake_docker import FakeDocker

    box = [container(f"c{i}", id=f"id{i}") for i in range(3)]
    api = FakeDocker(box, {c.name: {"status": {}} for c in box}, exec_seconds=2.0)
    endpoint = Endpoint("default", "unix:///x", api, threading.BoundedSemaphore(2))
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda c: execs.run(endpoint, c, [AGENT, "status"], timeout=0.1), box))
    assert [r.exit_code for r in results] == [0, 0, 0] and api.most == 2
    assert time.monotonic() - started >= 4.0
    assert Endpoint("default", "unix:///x", None).in_flight._initial_value == EXEC_CONCURRENCY == 16


@pytest.mark.parametrize("full", [False, True], ids=["quick path", "full cli"])
def test_a_compose_directory_is_not_the_scope_of_a_whole_daemon_server(stand_in, tmp_path, full):
    """Issue 25: `cd compose && hermesctl ps` while a serve of the whole daemon runs listed every
    container on the daemon. The directory narrows the request, so the server's answer (another
    scope) is not used, on either path; the reverse holds by the same comparison."""
    stand_in.document = _document([_row("web-1", "default", "up")], scope={**SCOPE, "project": None})
    here = tmp_path / "fleet"
    here.mkdir()
    (here / "compose.yaml").write_text("services: {}\n")
    code, out, err, _ = _cli("ps", socket_path=stand_in.path, cwd=here, full=full)
    assert "from hermesctl serve" not in err and "web-1" not in out
    assert code == 69, err  # asked directly: no daemon at DOCKER_HOST here
    code, out, err, _ = _cli("ps", socket_path=stand_in.path, full=full)  # the same, outside it: served
    assert code == 0 and "from hermesctl serve" in err and "web-1" in out
