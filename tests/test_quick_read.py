"""The read commands on the quick read path (hermesctl.cli.quick_read: before typer, rich or the
Docker SDK) print what the full CLI prints, byte for byte, with the same exit code: `gateway
status`, `logs -n`, `profile list`, `boot-log`, `doctor`, `usage`, `events`. No Docker needed: a
stand-in Docker API on a unix socket answers the container list, execs by the agent's verb (the
recorded answers of a real container, tests/fixtures/read-answers-h1.json, with hostile text
added), exec streams (`watch`) and Docker's event stream; both paths ask it, the full CLI through
the SDK. test_cli_profiles_logs.py compares the two paths on real containers."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from cli_modules import DRIVER, ROOT, run_cli

from hermesctl.agent.contract import AGENT
from hermesctl.cli import quick_ps, quick_read
from support.unix_http import UnixHTTPServer

FIXTURES = Path(__file__).parent / "fixtures"
ANSWERS = json.loads((FIXTURES / "read-answers-h1.json").read_text())
STATUS = json.loads((FIXTURES / "status-h1.json").read_text())
USAGE = (FIXTURES / "usage-h1.json").read_text()
HEAVY = ("docker", "rich", "typer", "click", "pydantic", "requests", "urllib3", "hermesctl.cli.app")
PROJECT = "quickread"


def _container(name: str, state: str = "running", status: str = "Up 5 minutes (healthy)") -> dict:
    return {"Id": name.encode().hex().ljust(64, "0"), "Names": [f"/{name}"], "State": state, "Status": status,
            "Labels": {"io.hermes-agent.managed": "true", "com.docker.compose.project": PROJECT}, "Mounts": []}


def _name_of(ref: str) -> str:
    raw = ref.rstrip("0")
    return bytes.fromhex(raw + ("0" if len(raw) % 2 else "")).decode()


def _answer(cmd: list[str], env: list | None) -> tuple[int, bytes]:
    """What the container answers an exec: the resident agent (s6-ipcclient) or the one-shot one."""
    if "/command/s6-ipcclient" in cmd:
        return (0, USAGE.encode()) if env else (0, json.dumps(STATUS).encode())
    verb = cmd[cmd.index(AGENT) + 1]
    if verb == "tail":
        return 0, ANSWERS["tail"].encode()
    if verb == "usage":
        return 0, USAGE.encode()
    return 0, json.dumps(ANSWERS[verb]).encode()


def _changed_status() -> dict:
    """The recorded status with coder's gateway gone down: the change a `watch` stream reports."""
    doc = json.loads(json.dumps(STATUS))
    doc["slots"]["coder"]["status"].update(up=False, pid=None, exit_code=1, seconds=0)
    return doc


@pytest.fixture
def docker_api(tmp_path):
    path = str(tmp_path / "docker.sock")
    execs: dict[str, tuple] = {}

    class Handler(BaseHTTPRequestHandler):

        def _head(self, code: int, content_type: str, length: int | None = None, chunked: bool = False):
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Api-Version", "1.41")
            if length is not None:
                self.send_header("Content-Length", str(length))
            if chunked:
                self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()

        def _json(self, code: int, doc) -> None:
            body = json.dumps(doc).encode()
            self._head(code, "application/json", len(body))
            self.wfile.write(body)

        def do_GET(self):
            api.seen.append(self.path)
            url = urlsplit(self.path)
            parts = url.path.split("/")
            if url.path.endswith("/_ping"):
                self._head(200, "text/plain", 2)
                return self.wfile.write(b"OK")
            if url.path.endswith("/version"):
                return self._json(200, {"ApiVersion": "1.41", "Version": "20.10.24"})
            if url.path.endswith("/containers/json"):
                return self._json(200, api.containers)
            if len(parts) >= 3 and parts[-3] == "containers" and parts[-1] == "json":
                return self._json(200, {"Id": parts[-2], "State": {"Running": True, "Paused": False}})
            if len(parts) >= 3 and parts[-3] == "exec" and parts[-1] == "json":
                return self._json(200, {"ExitCode": execs[parts[-2]][1], "Running": False})
            if url.path.endswith("/events"):
                self._head(200, "application/json", chunked=True)
                for ev in api.events:
                    line = json.dumps(ev).encode() + b"\n"
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(line), line))
                    self.wfile.flush()
                api.hold.wait(30)  # an events stream stays open until the client goes
                return None
            self._json(404, {"message": "no such thing"})

        def do_POST(self):
            parts = urlsplit(self.path).path.split("/")
            body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
            if parts[-1] == "exec" and parts[-3] == "containers":
                if _name_of(parts[-2]) in api.refuse:
                    return self._json(409, {"message": f"container {_name_of(parts[-2])} is not running"})
                exec_id = f"x{len(execs)}"
                cmd = body["Cmd"]
                if AGENT in cmd and cmd[cmd.index(AGENT) + 1] == "watch":
                    execs[exec_id] = ("watch", 0)
                else:
                    code, out = _answer(cmd, body.get("Env"))
                    execs[exec_id] = (out, code)
                return self._json(201, {"Id": exec_id})
            if parts[-1] == "start":
                out, _ = execs[parts[-2]]
                self._head(200, "application/vnd.docker.raw-stream")
                # As dockerd: the headers first, the output once the process wrote it (the SDK
                # reads the stream from the raw socket, past what its parser buffered).
                self.wfile.flush()
                time.sleep(0.05)
                if out == "watch":  # the recorded status, then a change, then held open
                    for doc in (STATUS, _changed_status()):
                        line = json.dumps({**doc, "event": "snapshot"}).encode() + b"\n"
                        self.wfile.write(b"\x01\x00\x00\x00" + len(line).to_bytes(4, "big") + line)
                        self.wfile.flush()
                        time.sleep(0.2)
                    api.hold.wait(30)
                    return None
                return self.wfile.write(b"\x01\x00\x00\x00" + len(out).to_bytes(4, "big") + out)
            self._json(404, {"message": "no such thing"})

        def log_message(self, *args):
            pass

    api = UnixHTTPServer(path, Handler)
    api.path, api.hold, api.refuse, api.seen = path, threading.Event(), set(), []
    api.containers = [_container("web-1"), _container("web-2"), _container("old", "exited", "Exited (1) 2 hours ago")]
    api.events = [{"Type": "container", "Action": "kill", "Actor": {"ID": "ab" * 32, "Attributes": {
        "name": "web-2", "signal": "18", "image": "hermes-agent:local-slim"}}, "time": 1, "timeNano": 1_000_000_000}]
    threading.Thread(target=api.serve_forever, daemon=True).start()
    yield api
    api.hold.set()
    api.shutdown()
    api.server_close()


def _env(api, tmp: Path, extra: dict | None = None) -> dict:
    return {"DOCKER_HOST": f"unix://{api.path}", "HERMESCTL_SOCKET": str(tmp / "no-serve.sock"),
            "XDG_STATE_HOME": str(tmp / "state"), **(extra or {})}


def _both(api, tmp: Path, *args: str, env: dict | None = None):
    quick = run_cli(args, modules_file=tmp / "quick.json", env=_env(api, tmp, env))
    full = run_cli(args, modules_file=tmp / "full.json", env=_env(api, tmp, env), full=True)
    return quick, full


def _heavy(modules: set[str]) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in HEAVY))


# (arguments, FORCE_COLOR): every read command, tables with and without colour, JSON documents.
READS = [
    (("gateway", "status", "web-1:coder"), True), (("gateway", "status", "web-*"), False),
    (("--json", "gateway", "status", "*:default", "--timeout", "5"), False),
    (("profile", "list"), True), (("--no-headers", "profile", "list", "web-2"), False),
    (("profile", "list", "--json"), False),
    (("logs", "--tail", "20", "web-*:coder"), True), (("boot-log", "web-2", "-n", "3", "--json"), False),
    (("doctor",), True), (("doctor", "web-1", "--json"), False),
    (("usage", "--by", "model"), True), (("usage", "web-1:default", "--no-headers"), False),
]


@pytest.mark.parametrize("args,colour", READS, ids=[" ".join(a) + (" (colour)" if c else "") for a, c in READS])
def test_a_read_command_prints_the_same_bytes_and_exit_code_on_both_paths(docker_api, tmp_path, args, colour):
    quick, full = _both(docker_api, tmp_path, "--project", PROJECT, *args, env={"FORCE_COLOR": "1"} if colour else None)
    assert quick[:3] == full[:3]
    assert quick[1], quick  # something was printed: the comparison is not of two empty answers
    assert "hermesctl.cli.quick_read" in quick[3] and "hermesctl.cli.app" in full[3]
    assert _heavy(quick[3]) == []


def test_what_a_container_wrote_reaches_the_terminal_escaped_on_both_paths(docker_api, tmp_path):
    for args in (("boot-log", "web-1"),):
        quick, full = _both(docker_api, tmp_path, "--project", PROJECT, *args, env={"FORCE_COLOR": "1"})
        assert quick[1] == full[1]
        assert "\x07" not in quick[1] and "\x1b]52" not in quick[1] and "\x1b[2J" not in quick[1]
        assert "\\x1b]52;c;aGk=\\x07" in quick[1]


def test_errors_are_the_full_clis_lines_and_codes(docker_api, tmp_path):
    for args in (("gateway", "status", "web-1:nosuch"), ("usage", "--since", "soon"), ("boot-log", "old"),
                 ("profile", "list", "web-1:bad\n")):
        quick, full = _both(docker_api, tmp_path, "--project", PROJECT, *args)
        assert quick[:3] == full[:3], args
        assert quick[0] not in (0, 3) and quick[2].startswith("hermesctl: "), (args, quick)
        assert "hermesctl.cli.app" not in quick[3], args


def test_a_container_that_did_not_answer_is_reported_alike(docker_api, tmp_path):
    docker_api.containers.append(_container("web-3"))
    docker_api.refuse.add("web-3")  # stopped meanwhile: its exec is refused (409)
    quick, full = _both(docker_api, tmp_path, "--project", PROJECT, "profile", "list")
    assert quick[:3] == full[:3]
    assert quick[0] == 7 and "web-3" in quick[2]


@pytest.mark.parametrize("args", [
    ("gateway", "status"), ("gateway", "status", "x", "--help"), ("gateway", "--json", "status", "x"),
    ("logs", "x", "-n5"), ("logs", "x", "-n", "1e3"), ("boot-log", "a", "b"),
    ("doctor", "--fix"), ("usage", "--since", "1d", "--since", "2d"), ("--context", "c", "events"),
    ("--fleet", "f.yaml", "profile", "list"), ("-H", "tcp://127.0.0.1:1", "gateway", "status", "x"),
    ("profile", "create", "x:y"), ("logs", "--", "x"), ("--timeout", "0", "doctor"),
])
def test_what_the_quick_path_does_not_cover_goes_to_the_full_cli(args):
    parsed = quick_read.parse(list(args))
    assert parsed is None or quick_read._local_run(parsed[1]) is None, args


@pytest.mark.parametrize("prefix", [
    (), ("-p", "x", "--json"), ("--host=unix:///a.sock", "-H", "unix:///b.sock", "--timeout", "2.5"),
    ("--engine", "podman", "--no-headers", "--project=y"),
])
def test_ps_and_the_read_commands_read_the_global_options_alike(prefix):
    """One parser of the global options (hermesctl.cli.quick_options) for both quick paths."""
    ps, read = quick_ps.parse([*prefix, "ps"]), quick_read.parse([*prefix, "events"])
    assert {k: ps[k] for k in read[1]} == read[1]
    assert read[1]["hosts"] == (["unix:///a.sock", "unix:///b.sock"] if "-H" in prefix else [])
    assert quick_ps._valid(ps) == [] and quick_read._local_run(read[1]) is not None


@pytest.mark.parametrize("prefix", [
    ("--timeout", "1", "--timeout", "2"), ("--timeout", "1e3"), ("--engine", "podman", "--swarm", "tcp://m:2376"),
    ("-p",), ("--json=1",), ("-p", "a", "--project", "b"), ("--timeout", "0"),
])
def test_global_options_the_quick_paths_leave_to_the_full_cli(prefix):
    ps, read = quick_ps.parse([*prefix, "ps"]), quick_read.parse([*prefix, "events"])
    assert ps is None or quick_ps._valid(ps) is None, prefix
    assert read is None or quick_read._local_run(read[1]) is None, prefix


def test_events_print_the_same_lines_on_both_paths(docker_api, tmp_path):
    """The same changes (a gateway down, from the `watch` stream; a container's kill, from
    Docker's events) on both paths; their times are when each path saw them, so compared without."""
    seen = []
    for full in (False, True):
        # stderr to a file: a pipe nobody reads while the stream runs could fill and hold the process
        err = tmp_path / f"events-{full}.err"
        proc = subprocess.Popen([sys.executable, "-c", DRIVER, "--project", PROJECT, "events", "--json"],
                                stdout=subprocess.PIPE, stderr=err.open("w"), text=True, cwd=ROOT,
                                env={**os.environ, "PYTHONPATH": str(ROOT), **_env(docker_api, tmp_path),
                                     "HERMESCTL_TEST_MODULES": str(tmp_path / f"events-{full}.json"),
                                     "HERMESCTL_TEST_PATH": "full" if full else "quick"})
        lines = []
        try:
            while len(lines) < 3:
                line = proc.stdout.readline()
                assert line, err.read_text()
                doc = json.loads(line)
                lines.append({k: v for k, v in doc.items() if k not in ("time", "timeNano")})
        finally:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                raise AssertionError(f"events ({'full CLI' if full else 'quick path'}) did not end within 20 s "
                                     f"of Ctrl-C; its stderr: {err.read_text()!r}")
        modules = set(json.loads((tmp_path / f"events-{full}.json").read_text()))
        seen.append((sorted(lines, key=json.dumps), proc.returncode, "hermesctl.cli.quick_read" in modules,
                     _heavy(modules)))
    assert seen[0][:2] == seen[1][:2]
    assert seen[0][2:] == (True, []), docker_api.seen
    actions = sorted((d["type"], d["action"], d["target"]) for d in seen[0][0])
    assert actions == [("container", "kill", "web-2"), ("gateway", "down", "web-1:coder"),
                       ("gateway", "down", "web-2:coder")]


def test_exec_and_event_streams_are_read_whatever_the_pieces_they_arrive_in():
    """backends/docker/unix_api._Stream: frames and chunked JSON lines cut anywhere by the socket
    (here byte by byte) come out whole; close() from another thread ends a stream that waits."""
    import socket as socketlib

    from hermesctl.backends.docker.unix_api import _Stream

    def fed(data: bytes, *, chunked: bool, hold: bool = False) -> _Stream:
        ours, theirs = socketlib.socketpair()

        def feed():
            try:
                for i in range(len(data)):
                    theirs.sendall(data[i:i + 1])
            except OSError:  # the reader closed once it had what it wanted: what it read is checked
                return
            if not hold:
                theirs.close()
        threading.Thread(target=feed, daemon=True).start()
        return _Stream(ours, b"", chunked=chunked)

    frames = b"".join(bytes([kind, 0, 0, 0]) + len(p).to_bytes(4, "big") + p
                      for kind, p in ((1, b'{"a": 1}\n'), (2, b"warning\n"), (1, b""), (1, b'{"b": 2}\n')))
    assert list(fed(frames, chunked=False).frames()) == [b'{"a": 1}\n', b"warning\n", b'{"b": 2}\n']
    events = b'{"Action": "start"}\n{"Action": "die"}\n'
    body = b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in (events[:7], events[7:30], events[30:])) + b"0\r\n\r\n"
    assert [e["Action"] for e in fed(body, chunked=True).json_lines()] == ["start", "die"]
    waiting = fed(b"", chunked=True, hold=True).json_lines()
    threading.Timer(0.2, waiting.close).start()
    assert list(waiting) == []
