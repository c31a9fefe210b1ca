"""A direct `ps` on a local socket (hermesctl.cli.quick_direct over hermesctl.backends.docker.unix_api):
the same output and exit code as the full CLI, without importing the Docker SDK, requests,
typer or rich. No Docker needed: a stand-in Docker API on a unix socket answers /_ping, the
container list and execs (the recorded status document of tests/fixtures/), and both the quick
path and the full CLI (the SDK) ask it: the one fake Docker API (tests/support/fake_docker.py)
behind a unix socket. Real containers answer the same `ps` in test_cli_gateways
and test_fleet_scale."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from cli_modules import run_cli

from fakefleet import container
from hermesctl.backends.docker.unix_api import demux
from support.fake_docker import FakeDocker
from support.unix_http import UnixHTTPServer

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
HEAVY = ("docker", "rich", "typer", "click", "pydantic", "requests", "urllib3", "paramiko", "hermesctl.cli.app",
         "http.client")
HEAVY_UI = ("rich", "typer", "click", "pydantic", "hermesctl.cli.app")
PROJECT = "quick"


def _container(name: str, state: str = "running", status: str = "Up 5 minutes (healthy)"):
    return container(name, id=name.encode().hex().ljust(64, "0"), state=state, status=status,
                     labels={"com.docker.compose.project": PROJECT})


@pytest.fixture
def docker_api(tmp_path):
    """The one fake Docker API (tests/support/fake_docker.py) on a unix socket, speaking the part of
    Docker's HTTP API a direct ps uses (/_ping, /version, the container list, exec create, start
    and inspect), for the quick path's stdlib client and the SDK alike. `api.docker` is the fake
    (its answers: the recorded status document); `api.refuse`: container name -> an HTTP status
    its exec is refused with; `api.filters` and `api.cmds` record what was asked."""
    path = str(tmp_path / "docker.sock")
    status_doc = json.loads((FIXTURES / "status-h1.json").read_text())
    execs: dict[str, dict] = {}

    class Handler(BaseHTTPRequestHandler):
        def _send(self, code: int, body: bytes, content_type: str = "application/json", extra: dict | None = None):
            self.send_response(code)
            self.send_header("Content-Type", content_type)
            self.send_header("Api-Version", "1.41")
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            if content_type == "application/json" or code != 200:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if content_type == "application/vnd.docker.raw-stream":
                # As dockerd: the headers go first, the output once the process wrote it (the
                # SDK reads the stream from the raw socket, past what its parser buffered).
                self.wfile.flush()
                time.sleep(0.05)
            try:
                self.wfile.write(body)
            except BrokenPipeError:
                pass  # a client that read the headers only (a /_ping)

        def _body(self) -> dict:
            length = int(self.headers.get("Content-Length") or 0)
            return json.loads(self.rfile.read(length) or b"{}")

        def do_GET(self):
            url = urlsplit(self.path)
            parts = url.path.split("/")
            if url.path.endswith("/_ping"):
                return self._send(200, b"OK", "text/plain")
            if url.path.endswith("/version"):
                return self._send(200, json.dumps({"ApiVersion": "1.41", "Version": "20.10.24"}).encode())
            if url.path.endswith("/containers/json"):
                labels = json.loads(parse_qs(url.query)["filters"][0])["label"]
                api.filters.append(labels)
                return self._send(200, json.dumps(api.docker.containers({"label": labels})).encode())
            if len(parts) >= 3 and parts[-3] == "exec" and parts[-1] == "json":
                return self._send(200, json.dumps({"ExitCode": execs[parts[-2]]["code"], "Running": False}).encode())
            self._send(404, b'{"message": "no such thing"}')

        def do_POST(self):
            parts = urlsplit(self.path).path.split("/")
            body = self._body()
            if parts[-1] == "exec" and parts[-3] == "containers":
                name = api.docker._container(parts[-2]).name
                api.cmds.append((name, body["Cmd"], body["User"]))
                if name in api.refuse:
                    return self._send(api.refuse[name], b'{"message": "container is not running"}')
                exec_id = f"x{len(execs)}"
                execs[exec_id] = {"ref": parts[-2], "cmd": body["Cmd"], "user": body["User"], "env": body.get("Env")}
                return self._send(201, json.dumps({"Id": exec_id}).encode())
            if parts[-1] == "start":
                e = execs[parts[-2]]
                env = dict(item.split("=", 1) for item in e["env"] or [])
                e["code"], out, err = api.docker.exec_run(e["ref"], e["cmd"], user=e["user"], environment=env or None)
                frame = b"".join(bytes([kind, 0, 0, 0]) + len(data).to_bytes(4, "big") + data
                                 for kind, data in ((1, out), (2, err)) if data)
                return self._send(200, frame, "application/vnd.docker.raw-stream")
            self._send(404, b'{"message": "no such thing"}')

        def log_message(self, *args):
            pass

    api = UnixHTTPServer(path, Handler)
    api.path, api.filters, api.cmds, api.refuse = path, [], [], {}
    api.docker = FakeDocker([_container("web-1"), _container("web-2"), _container("old", "exited", "Exited (1) 2 hours ago")],
                            {"web-1": {"status": status_doc}, "web-2": {"status": status_doc}})
    threading.Thread(target=api.serve_forever, daemon=True).start()
    yield api
    api.shutdown()
    api.server_close()


def _cli(api, *args: str, full: bool = False, env: dict | None = None) -> tuple[int, str, str, set[str]]:
    return run_cli(args, modules_file=Path(api.path).with_name("modules.json"), full=full, env={
        "DOCKER_HOST": f"unix://{api.path}", "HERMESCTL_SOCKET": str(Path(api.path).with_name("no-serve.sock")),
        **(env or {})})


def _heavy(modules: set[str], heavy: tuple[str, ...] = HEAVY) -> list[str]:
    return sorted(m for m in modules if any(m == h or m.startswith(h + ".") for h in heavy))


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


@pytest.mark.parametrize("args", [
    ("ps",), ("ps", "--direct"), ("ps", "--json"), ("ps", "-q", "web-*:p?"), ("ps", "--wide", "--no-headers"),
    ("ps", "web-2:coder", "--timeout", "5"), ("ps", "nosuch"), ("ps", "web-1:nosuch"),
])
def test_direct_ps_on_a_local_socket_prints_what_the_full_cli_prints(docker_api, args):
    quick = _cli(docker_api, "--project", PROJECT, *args)
    full = _cli(docker_api, "--project", PROJECT, *args, full=True)
    assert quick[0] == full[0], (quick[2], full[2])
    if "--json" in args:
        assert json.loads(quick[1]) == json.loads(full[1])
    else:
        assert _lines(quick[1]) == _lines(full[1])
    assert quick[2] == full[2]
    assert "hermesctl.cli.quick_direct" in quick[3] and "hermesctl.cli.app" in full[3]
    if "nosuch" in args:  # a failed request (inspect: why not found) imports the SDK's errors
        assert _heavy(quick[3], HEAVY_UI) == []
    else:
        assert _heavy(quick[3]) == []


def test_direct_ps_asks_each_running_container_once_as_hermes_through_the_agents_socket(docker_api):
    code, out, err, _ = _cli(docker_api, "--project", PROJECT, "ps", "--direct")
    assert code == 3, err  # the recorded fleet has gateways wanted up that are down
    assert [line.split()[:2] for line in _lines(out)][:3] == [["CONTAINER", "PROFILE"], ["old", "-"],
                                                              ["web-1", "coder"]]
    assert docker_api.filters == [["io.hermes-agent.managed=true", f"com.docker.compose.project={PROJECT}"]]
    assert sorted(name for name, _, _ in docker_api.cmds) == ["web-1", "web-2"]
    for _, cmd, user in docker_api.cmds:
        assert user == "hermes" and cmd[:4] == ["/usr/bin/timeout", "-k", "1", "5"] and "/command/s6-ipcclient" in cmd


def test_a_container_that_stopped_meanwhile_is_reported_and_the_rest_answers(docker_api):
    docker_api.refuse["web-2"] = 409
    quick = _cli(docker_api, "--project", PROJECT, "ps")
    full = _cli(docker_api, "--project", PROJECT, "ps", full=True)
    assert quick[0] == full[0] == 7
    assert "container web-2 did not answer: container web-2 is not running" in quick[2]
    assert quick[2] == full[2] and _lines(quick[1]) == _lines(full[1])


def test_no_daemon_at_the_socket_is_exit_69_in_one_line(tmp_path, docker_api):
    code, out, err, modules = _cli(docker_api, "ps", env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert (code, out) == (69, "") and err.strip().count("\n") == 0
    assert "cannot reach the Docker daemon at unix://" in err and _heavy(modules) == []


def test_endpoints_quick_direct_does_not_cover_go_to_the_full_cli(docker_api, tmp_path):
    for args in (("--context", "nosuch", "ps"), ("-H", "tcp://127.0.0.1:1", "ps"),
                 ("--fleet", str(tmp_path / "none.yaml"), "ps")):
        code, _, err, modules = _cli(docker_api, *args)
        assert "hermesctl.cli.app" in modules and code != 0, args


def test_exec_streams_are_demultiplexed_as_the_sdk_does():
    frames = b"".join(bytes([kind, 0, 0, 0]) + len(p).to_bytes(4, "big") + p
                      for kind, p in ((1, b"out-1 "), (2, b"err"), (1, b"out-2"), (1, b"")))
    assert demux(frames) == (b"out-1 out-2", b"err")
    assert demux(frames + b"\x01\x00\x00") == (b"out-1 out-2", b"err")  # a torn header is dropped
