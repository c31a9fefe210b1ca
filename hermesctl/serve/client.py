"""The CLI's side of the unix socket: where a running `hermesctl serve` listens, and asking it
for the ps document, as the docker CLI asks dockerd. Stdlib only, and quick to give up: no
answer within a second means "ask the containers directly"."""
import http.client
import json
import os
import socket
from pathlib import Path

ANSWER_TIMEOUT_S = 1.0


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


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str):
        super().__init__("localhost", timeout=ANSWER_TIMEOUT_S)
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(ANSWER_TIMEOUT_S)
        self.sock.connect(self.path)


def get_json(path: str, url: str) -> dict | None:
    """GET url over the socket; None when no server answers properly."""
    if not os.path.exists(path):
        return None
    conn = _UnixConnection(path)
    try:
        conn.request("GET", url)
        response = conn.getresponse()
        if response.status != 200:
            return None
        return json.loads(response.read())
    except (OSError, ValueError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def ps_from_server(scope: dict, path: str | None = None) -> dict | None:
    """The server's ps document, if a server runs with the same endpoint options as this CLI."""
    path = path or default_socket_path()
    doc = get_json(path, "/api/ps")
    return doc if doc is not None and doc.get("scope") == scope else None
