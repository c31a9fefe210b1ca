"""The CLI's side of the unix socket: where a running `hermesctl serve` listens, and asking it
for the ps document, as the docker CLI asks dockerd. Stdlib only (socket and json: this runs
before anything else is imported), and quick to give up: no answer within a second means "ask
the containers directly"."""
import json
import os
import socket
import time
from pathlib import Path

ANSWER_TIMEOUT_S = 1.0
MAX_ANSWER = 64 << 20  # bytes: 200 containers' ps document is ~0.5 MB


def default_socket_path() -> str:
    if os.environ.get("HERMESCTL_SOCKET"):
        return os.environ["HERMESCTL_SOCKET"]
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    base = Path(runtime) / "hermesctl" if runtime else Path(f"/tmp/hermesctl-{os.getuid()}")
    return str(base / "serve.sock")


def prepare_socket_dir(path: str) -> None:
    """The socket's directory: ours and private (0700), or refuse to use it."""
    directory = Path(path).parent
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = directory.lstat()
    if directory.is_symlink() or st.st_uid != os.getuid():
        raise PermissionError(f"{directory} is not a private directory of ours")
    os.chmod(directory, 0o700)


def get_json(path: str, url: str) -> dict | None:
    """GET url over the socket; None when no server answers properly within ANSWER_TIMEOUT_S.
    One HTTP/1.1 request with `Connection: close`, read to the end: written out here because
    http.client imports the email package, ~10 ms of every served `ps`."""
    if not os.path.exists(path):
        return None
    deadline = time.monotonic() + ANSWER_TIMEOUT_S
    received, size = [], 0
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(ANSWER_TIMEOUT_S)
            sock.connect(path)
            sock.sendall(f"GET {url} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".encode("ascii"))
            while True:
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                sock.settimeout(left)
                data = sock.recv(1 << 16)
                if not data:
                    break
                received.append(data)
                size += len(data)
                if size > MAX_ANSWER:
                    return None
    except OSError:
        return None
    return _json_body(b"".join(received))


def _json_body(response: bytes) -> dict | None:
    """The JSON object of a complete `200` response (Content-Length or to the end), else None."""
    head, sep, body = response.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = lines[0].split(None, 2)
    if not sep or len(status) < 2 or not status[0].startswith(b"HTTP/") or status[1] != b"200":
        return None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"identity").lower() != b"identity":
        return None  # our server never chunks; anything else is not it
    if b"content-length" in headers:
        try:
            length = int(headers[b"content-length"])
        except ValueError:
            return None
        if len(body) < length:
            return None
        body = body[:length]
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


_answers: dict[tuple[str, str], dict | None] = {}


def ps_from_server(scope: dict, path: str | None = None, *, again: bool = False) -> dict | None:
    """The server's ps document, if a server runs with the same endpoint options as this CLI.
    Asked once per process (hermesctl.cli.quick_ps asks before the full CLI, which must not wait a
    second time for a server that did not answer) unless `again`."""
    path = path or default_socket_path()
    key = (path, json.dumps(scope, sort_keys=True))
    if again or key not in _answers:
        doc = get_json(path, "/api/ps")
        _answers[key] = doc if doc is not None and doc.get("scope") == scope else None
    return _answers[key]
