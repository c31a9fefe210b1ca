# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""`serve`: the agent, resident, answering on two Unix sockets.

- contract.AGENT_SOCKET: one connection, one `status` document, computed when the client connects
  (never cached, so it is as fresh as the one-shot). The client sends nothing.
- contract.AGENT_QUERY_SOCKET: the connected process carries its question in its environment
  (contract.QUERY_ENV: a JSON array, a verb of contract.QUERY_SOCKET_VERBS and its arguments,
  parsed as on the command line), and gets that verb's document: `usage` from the tallies this
  process keeps (usage_store), so that a question costs neither a Python start nor a read of
  every session in the window.

Clients are handled one at a time: a status answer takes about a millisecond, a usage answer
a few over an unchanged database. A client that never reads cannot block us for long (a status
document fits in the socket's buffer and a send that would block is given up; a query's answer
gets QUERY_SEND_TIMEOUT_S).
"""
import os
import socket
import sys

from . import contract as C
from .fastjson import dumps
from .snapshot import status

QUERY_SEND_TIMEOUT_S = 5.0


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


def _error(code: str, message: str) -> dict:
    return {"schema": C.SCHEMA, "error": {"code": code, "message": message}}


def query(line: bytes, store) -> dict:
    """The document for one question (never raises: a bad one is an error document)."""
    from .fastjson import loads
    from .verbs import parse
    try:
        request = loads(line.decode("utf-8", "strict"))
    except (UnicodeDecodeError, ValueError):
        return _error("usage", "the question is not JSON")
    if not (isinstance(request, list) and request and all(isinstance(a, str) for a in request)):
        return _error("usage", "the question is not a JSON array of strings")
    verb = request[0]
    if verb not in C.QUERY_SOCKET_VERBS:
        return _error("usage", f"{verb[:40]!r} is not answered on this socket; here: {' '.join(C.QUERY_SOCKET_VERBS)}")
    try:
        args = parse(verb, request[1:])
        return _usage(args, store)
    except ValueError as exc:
        return _error("invalid-name" if str(exc).startswith("invalid profile name") else "usage", str(exc))
    except Exception as exc:  # noqa: BLE001 - one bad answer must not end the service
        print(f"hermes-ctl-agent serve: {verb}: {exc!r}", file=sys.stderr, flush=True)
        return _error("failed", f"{verb}: {exc!r}")


def _usage(args: dict, store) -> dict:
    import time
    from .paths import profile_entries
    if args["window"] is not None:
        cutoff = time.time() - args["window"]  # back from the container's clock, as `hermes insights --days`
    else:
        cutoff = args["since"] or 0.0
    if args["profiles"]:
        return store.usage(args["profiles"], cutoff)
    profiles, skipped = profile_entries()
    store.forget_others(profiles)
    return store.usage(profiles, cutoff, skipped)


def peer_question(conn: socket.socket) -> bytes | None:
    """The question the connected process carries in its environment (contract.QUERY_ENV), read
    from /proc/PID/environ: a process of our own user only. None when there is none."""
    import struct
    pid, uid, _gid = struct.unpack("3i", conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                         struct.calcsize("3i")))
    if uid != os.getuid() or pid <= 0:
        return None
    key = C.QUERY_ENV.encode() + b"="
    for attempt in range(3):  # the client may be between two exec()s (s6-ipcclient -> fdmove -> head)
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                environ = f.read(1 << 20)
        except OSError:
            return None
        found = next((e[len(key):] for e in environ.split(b"\0") if e.startswith(key)), None)
        if found is not None:
            return found
        import time
        time.sleep(0.002)
    return None


def answer_query(conn: socket.socket, store) -> None:
    try:
        question = peer_question(conn)
        if question is None:
            doc = _error("usage", f"no question: the client's environment has no {C.QUERY_ENV}")
        elif len(question) > C.QUERY_MAX_BYTES:
            doc = _error("usage", f"the question is longer than {C.QUERY_MAX_BYTES} bytes")
        else:
            doc = query(question, store)
        conn.settimeout(QUERY_SEND_TIMEOUT_S)
        conn.sendall((dumps(doc, strict=True) + "\n").encode())  # usage only: strict JSON
    except OSError:
        pass  # the client went away, or would not read
    finally:
        conn.close()


def serve(path: str = C.AGENT_SOCKET, query_path: str = C.AGENT_QUERY_SOCKET) -> int:
    import select
    from .usage_store import Store
    server, queries, store = bind(path), bind(query_path), Store()
    while True:
        ready, _, _ = select.select([server, queries], [], [])
        if server in ready:
            conn, _ = server.accept()
            answer(conn)
        if queries in ready:
            conn, _ = queries.accept()
            answer_query(conn, store)
