# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""`serve`: the agent, resident, answering `status` on a Unix socket (contract.AGENT_SOCKET).

One connection, one answer: the same document `hermes-ctl-agent status` prints, computed when
the client connects (never cached, so it is as fresh as the one-shot). Clients are handled one
at a time: an answer takes about a millisecond, and a client that never reads cannot block us
(the document fits in the socket's buffer; a send that would block is given up).
"""
import os
import socket
import sys

from . import contract as C
from .fastjson import dumps
from .snapshot import status


def bind(path: str) -> socket.socket:
    """Listen at `path`, replacing a stale socket atomically (bound under a temporary name)."""
    tmp = f"{path}.{os.getpid()}"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(tmp)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    server.listen(128)
    return server


def answer(conn: socket.socket) -> None:
    try:
        try:
            doc = status()
        except Exception as exc:  # noqa: BLE001 - one bad answer must not end the service
            doc = {"schema": C.SCHEMA, "error": {"code": "failed", "message": f"status: {exc!r}"}}
            print(f"hermes-ctl-agent serve: {exc!r}", file=sys.stderr, flush=True)
        conn.setblocking(False)
        conn.sendall((dumps(doc) + "\n").encode())
    except OSError:
        pass  # the client went away, or would not read
    finally:
        conn.close()


def serve(path: str = C.AGENT_SOCKET) -> int:
    server = bind(path)
    while True:
        conn, _ = server.accept()
        answer(conn)
