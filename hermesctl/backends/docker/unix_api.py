"""The Docker API of a local daemon (a unix:// socket, no TLS) spoken with the stdlib: what a
direct `ps` and the quick read commands need (listing containers, one exec each, exec and
event streams) without importing the Docker SDK and
requests, which cost ~0.1 s of CPU per command before the first request (issue 18).

Each request is one HTTP/1.1 exchange on a connection of its own (`Connection: close`): a unix
connection costs dockerd microseconds, and nothing is shared between threads. An exec is
exec_create, exec_start read to the end (dockerd sends the multiplexed stdout/stderr stream and
closes the connection when the process ends), then exec_inspect for its exit code, as the SDK
does. Any other call goes to the SDK's Daemon (hermesctl.backends.docker.daemon), connected on first use.

Errors are those of the SDK's Daemon: docker.errors.NotFound / APIError for an HTTP error
(imported then, on the error path only), DaemonUnreachableError when the socket fails.
"""
import json
import socket
import threading
import time
from urllib.parse import quote

from hermesctl.backends.docker import podman
from hermesctl.backends.docker.endpoint import Endpoint
from hermesctl.config.endpoints import EXEC_CONCURRENCY, Resolved, short_reason
from hermesctl.core.errors import DaemonUnreachableError

# An exec's output is read for at most this long per chunk (its own deadline is hermesctl.backends.docker.execs').
STREAM_READ_TIMEOUT_S = 600
MAX_BODY = 256 << 20  # bytes: a JSON answer larger than this is not dockerd's
STDOUT, STDERR = 1, 2


class _Response:
    """What the SDK's APIError reads from a response (status_code, url, reason)."""

    def __init__(self, status_code: int, url: str, reason: str):
        self.status_code, self.url, self.reason = status_code, url, reason


def _api_error(status: int, url: str, reason: str, body: bytes) -> Exception:
    """The SDK's exception for an HTTP error, so that callers catch one kind whichever client
    asked. Imported here: only a failing request pays for the SDK."""
    from docker.errors import APIError, NotFound
    try:
        explanation = json.loads(body).get("message") or body.decode("utf-8", "replace")
    except (ValueError, AttributeError):
        explanation = body.decode("utf-8", "replace")
    cls = NotFound if status == 404 else APIError
    return cls(f"{status} {reason}", response=_Response(status, url, reason), explanation=explanation.strip())


def _read_head(sock: socket.socket) -> tuple[int, str, dict[bytes, bytes], bytes]:
    """Status, reason, headers (lower-case names) and what came after them."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("the daemon closed the connection before answering")
        data += chunk
        if len(data) > 1 << 20:
            raise ConnectionError("an answer's headers exceed 1 MiB")
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    parts = lines[0].split(None, 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/") or not parts[1].isdigit():
        raise ConnectionError(f"not an HTTP answer: {lines[0][:80]!r}")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return int(parts[1]), (parts[2] if len(parts) > 2 else b"").decode("latin-1"), headers, rest


def _read_to_end(sock: socket.socket, rest: bytes) -> bytes:
    received, size = [rest], len(rest)
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return b"".join(received)
        received.append(chunk)
        size += len(chunk)
        if size > MAX_BODY:
            raise ConnectionError("an answer exceeds its size limit")


def _body(sock: socket.socket, headers: dict[bytes, bytes], rest: bytes) -> bytes:
    """The body: by Content-Length, chunked, or to the end of the connection."""
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        return _dechunk(_read_to_end(sock, rest))
    data = _read_to_end(sock, rest)
    if b"content-length" in headers:
        length = int(headers[b"content-length"])
        if len(data) < length:
            raise ConnectionError("the daemon's answer was cut short")
        return data[:length]
    return data


def _dechunk(data: bytes) -> bytes:
    out, pos = [], 0
    while True:
        end = data.index(b"\r\n", pos)
        size = int(data[pos:end].split(b";")[0], 16)
        if size == 0:
            return b"".join(out)
        out.append(data[end + 2:end + 2 + size])
        if len(out[-1]) < size:
            raise ConnectionError("a chunked answer was cut short")
        pos = end + 2 + size + 2


def demux(stream: bytes) -> tuple[bytes, bytes]:
    """stdout and stderr of a multiplexed exec stream (8-byte frame headers: stream, 0, 0, 0,
    big-endian length), as the SDK's demux=True gives them."""
    out, err, pos = [], [], 0
    while pos + 8 <= len(stream):
        kind, size = stream[pos], int.from_bytes(stream[pos + 4:pos + 8], "big")
        payload = stream[pos + 8:pos + 8 + size]
        (err if kind == STDERR else out).append(payload)
        pos += 8 + size
    return b"".join(out), b"".join(err)


class _Stream:
    """An answer read as it comes, on its own socket; close() (from any thread) ends it."""

    def __init__(self, sock: socket.socket, rest: bytes, *, chunked: bool):
        self.sock, self.rest, self.chunked = sock, rest, chunked

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes a reader blocked in recv
        except OSError:
            pass
        self.sock.close()

    def _raw(self):
        """The body's bytes as they arrive, until the daemon or close() ends the connection."""
        if self.rest:
            yield self.rest
        while True:
            try:
                chunk = self.sock.recv(65536)
            except OSError:
                if self.sock.fileno() == -1:  # closed here: the end
                    return
                raise
            if not chunk:
                return
            yield chunk

    def _body(self):
        """The body, de-chunked when it is chunked (Docker's events are)."""
        if not self.chunked:
            yield from self._raw()
            return
        buffer = b""
        for data in self._raw():
            buffer += data
            while True:
                end = buffer.find(b"\r\n")
                if end < 0:
                    if len(buffer) > 1 << 16:
                        raise ConnectionError("a chunk header exceeds 64 KiB")
                    break
                size = int(buffer[:end].split(b";")[0], 16)
                if size == 0:
                    return
                if len(buffer) < end + 2 + size + 2:
                    if size > MAX_BODY:
                        raise ConnectionError("an answer exceeds its size limit")
                    break
                yield buffer[end + 2:end + 2 + size]
                buffer = buffer[end + 2 + size + 2:]

    def frames(self) -> "_Iterating":
        """The payloads of a multiplexed exec stream (see demux), each as it is complete."""
        def payloads():
            buffer = b""
            for data in self._body():
                buffer += data
                while len(buffer) >= 8:
                    size = int.from_bytes(buffer[4:8], "big")
                    if len(buffer) < 8 + size:
                        break
                    payload, buffer = buffer[8:8 + size], buffer[8 + size:]
                    if payload:
                        yield payload
        return _Iterating(payloads(), self.close)

    def json_lines(self) -> "_Iterating":
        """One decoded JSON object per line (Docker's events stream)."""
        def documents():
            buffer = b""
            for data in self._body():
                buffer += data
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield json.loads(line)
                if len(buffer) > MAX_BODY:
                    raise ConnectionError("an event exceeds its size limit")
        return _Iterating(documents(), self.close)


class _Iterating:
    """A generator with the stream's close(): what the SDK's streams offer their callers."""

    def __init__(self, items, close):
        self._items, self.close = items, close

    def __iter__(self):
        return self._items


class UnixDaemon:
    """hermesctl.backends.docker.daemon.Daemon's reads and execs for a unix socket, stdlib only; the
    rest through the SDK."""

    def __init__(self, path: str, name: str, url: str, call_timeout: float, version: str,
                 engine: str | None = None):
        self.path, self.name, self.url, self.call_timeout = path, name, url, call_timeout
        self.engine = engine
        self._prefix = f"/v{version}"
        self._sdk = None
        self._sdk_lock = threading.Lock()

    # --- HTTP ----------------------------------------------------------------------------
    def _request(self, method: str, path: str, body: dict | None = None, *, timeout: float,
                 stream: bool = False) -> bytes:
        """The answer's body (a 2xx); an exec's stream is read to the end of the connection."""
        payload = b"" if body is None else json.dumps(body).encode()
        url = self._prefix + path
        request = (f"{method} {url} HTTP/1.1\r\nHost: docker\r\nUser-Agent: hermesctl\r\n"
                   f"Connection: close\r\nContent-Length: {len(payload)}\r\n"
                   + ("Content-Type: application/json\r\n" if body is not None else "") + "\r\n").encode() + payload
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(self.path)
                sock.sendall(request)
                status, reason, headers, rest = _read_head(sock)
                if stream and status == 200:
                    return _read_to_end(sock, rest)
                data = _body(sock, headers, rest)
        except (OSError, ValueError) as exc:
            raise DaemonUnreachableError(f"lost the Docker daemon {self.name}: {short_reason(exc)}") from exc
        if not 200 <= status < 300:
            raise _api_error(status, f"http+docker://localhost{url}", reason, data)
        return data

    def _json(self, method: str, path: str, body: dict | None = None):
        data = self._request(method, path, body, timeout=self.call_timeout)
        try:
            return json.loads(data) if data else None
        except ValueError as exc:
            raise DaemonUnreachableError(f"the Docker daemon {self.name} answered {path} with something "
                                         "that is not JSON") from exc

    # --- the calls a direct ps makes -------------------------------------------------------
    def containers(self, filters: dict, *, all: bool = True) -> list[dict]:  # noqa: A002 - the API's word
        query = f"/containers/json?all={1 if all else 0}&filters={quote(json.dumps(filters))}"
        return self._json("GET", query)

    def inspect_container(self, ref: str) -> dict:
        return self._json("GET", f"/containers/{quote(ref, safe='')}/json")

    def exec_run(self, ref: str, argv: list[str], *, user: str,
                 environment: dict | None = None) -> tuple[int | None, bytes, bytes]:
        """argv to completion (the caller bounds it): (exit code, stdout, stderr)."""
        config = {"User": user, "AttachStdin": False, "AttachStdout": True, "AttachStderr": True,
                  "Tty": False, "Cmd": list(argv)}
        if environment:
            config["Env"] = [f"{k}={v}" for k, v in environment.items()]
        exec_id = self._json("POST", f"/containers/{quote(ref, safe='')}/exec", config)["Id"]
        stream = self._request("POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False},
                               timeout=STREAM_READ_TIMEOUT_S, stream=True)
        out, err = demux(stream)
        return self._json("GET", f"/exec/{exec_id}/json")["ExitCode"], out, err

    # --- streams: `events` and `logs -f` (issue 28) -------------------------------------------
    def _open(self, method: str, path: str, body: dict | None, *, timeout: float | None) -> "_Stream":
        """A request whose answer is read as it comes: the open socket past the headers."""
        payload = b"" if body is None else json.dumps(body).encode()
        url = self._prefix + path
        request = (f"{method} {url} HTTP/1.1\r\nHost: docker\r\nUser-Agent: hermesctl\r\n"
                   f"Connection: close\r\nContent-Length: {len(payload)}\r\n"
                   + ("Content-Type: application/json\r\n" if body is not None else "") + "\r\n").encode() + payload
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.call_timeout)
            sock.connect(self.path)
            sock.sendall(request)
            status, reason, headers, rest = _read_head(sock)
            if not 200 <= status < 300:
                data = _body(sock, headers, rest)
                sock.close()
                raise _api_error(status, f"http+docker://localhost{url}", reason, data)
            sock.settimeout(timeout)
        except (OSError, ValueError) as exc:
            sock.close()
            raise DaemonUnreachableError(f"lost the Docker daemon {self.name}: {short_reason(exc)}") from exc
        return _Stream(sock, rest, chunked=headers.get(b"transfer-encoding", b"").lower() == b"chunked")

    def exec_stream(self, ref: str, argv: list[str], *, user: str, stderr: bool = True, stdin: bool = False):
        """argv's output as it comes: its frames' payloads (stdout and stderr, as the SDK's
        exec_start(stream=True) gives them), an iterable with a close(). With `stdin`, the
        exec's stdin is attached and never written: it closes when we go (contract.LIFELINE_OPTION)."""
        config = {"User": user, "AttachStdin": stdin, "AttachStdout": True, "AttachStderr": stderr,
                  "Tty": False, "Cmd": list(argv)}
        exec_id = self._json("POST", f"/containers/{quote(ref, safe='')}/exec", config)["Id"]
        stream = self._open("POST", f"/exec/{exec_id}/start", {"Detach": False, "Tty": False},
                            timeout=STREAM_READ_TIMEOUT_S)
        return stream.frames()

    def events(self, since: int, filters: dict):
        """Docker's events from `since` on, one dict each, until closed (no read deadline: a
        quiet fleet sends nothing for hours), as the SDK's events(decode=True)."""
        query = f"/events?since={int(since)}&filters={quote(json.dumps(filters))}"
        return self._open("GET", query, None, timeout=None).json_lines()

    # --- everything else: the SDK's Daemon -------------------------------------------------
    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        with self._sdk_lock:
            if self._sdk is None:
                from hermesctl.backends.docker import daemon
                self._sdk = daemon.connect(Resolved(self.name, self.url), timeout=self.call_timeout,
                                          engine=self.engine).daemon
        return getattr(self._sdk, name)


def connect(spec: Resolved, *, timeout: float, engine: str | None = None) -> Endpoint:
    """An endpoint on a local socket (spec.url unix://, no TLS) whose daemon answers /_ping
    within `timeout` seconds; DaemonUnreachableError otherwise. The API version is the daemon's
    own; the engine `engine` (--engine), else the one its /_ping answer names."""
    path = spec.url[len("unix://"):]
    where = spec.url if spec.name == spec.url else f"{spec.url} ({spec.name})"
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(path)
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: docker\r\nUser-Agent: hermesctl\r\nConnection: close\r\n\r\n")
            sock.settimeout(max(0.001, deadline - time.monotonic()))
            status, _, headers, _ = _read_head(sock)
    except socket.timeout:
        raise DaemonUnreachableError(f"cannot reach the Docker daemon at {where}: "
                                     f"no answer within {timeout:g}s") from None
    except OSError as exc:
        raise DaemonUnreachableError(f"cannot reach the Docker daemon at {where}: {short_reason(exc)}") from exc
    version = headers.get(b"api-version", b"").decode("ascii", "replace")
    if status != 200 or not version.replace(".", "").isdigit():
        raise DaemonUnreachableError(f"cannot reach the Docker daemon at {where}: "
                                     f"its /_ping answered {status} without an API version")
    chosen = podman.choose(podman.engine_from_ping(headers), engine, where)
    daemon = UnixDaemon(path, spec.name, spec.url, timeout, version, chosen)
    return Endpoint(name=spec.name, url=spec.url, daemon=daemon,
                    in_flight=threading.BoundedSemaphore(EXEC_CONCURRENCY), cli_args=spec.cli_args,
                    engine=chosen)
