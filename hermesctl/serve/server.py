"""The HTTP side of `hermesctl serve`: one handler class, served on a TCP listener and on a unix
socket (mode 0600) that the CLI asks before exec'ing into containers.

  GET  /                 the fleet page (static: it holds no data and no token)
  GET  /metrics          Prometheus exposition
  GET  /api/ps           the ps document (as `hermesctl ps --json`), with where and how fresh
  GET  /api/events       server-sent events: the state on every change
  GET  /api/logs         ?target=C:P&n=N: a gateway's log tail; with &follow=1 server-sent events:
                         the tail, then each new line as it is written (one held-open exec)
  GET  /api/info         what this server watches (its endpoint options)
  POST /api/gateway/VERB {"target": "C:P"}: start|stop|restart, through the CLI's lifecycle code

Who may ask (serve.auth): every request must name this server in its Host header (DNS
rebinding). On TCP, which every local user and possibly other machines reach, everything but the
static page needs the token; the unix socket (0600, the operator's only) answers reads without
it. /metrics, /api/ps and /api/events answer 503 until the first look at every endpoint is in: an
empty fleet before it would read as every gateway gone.
"""
import json
import os
import queue
import socket
import socketserver
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable
from urllib.parse import parse_qs, quote, urlsplit

from hermesctl.render.documents import strict
from hermesctl.serve import auth, metrics
from hermesctl.serve.page import page
from hermesctl.serve.state import FleetState

SSE_KEEPALIVE_S = 15.0
MAX_BODY = 4096
LOG_FOLLOWERS = 8        # log streams held open at once (each is an exec in a container)
LOG_KEEPALIVE_S = 3.0    # a page that moved to another log frees its place (and its exec) this soon
LOG_BATCH = 500          # lines sent in one event at most
LOG_QUEUE = 2000         # lines waiting for a slow browser at most: the exec waits beyond


@dataclass
class App:
    state: FleetState
    token: str
    scope: dict
    act: Callable[[str, str], list[dict]]      # (verb, target) -> results
    log_tail: Callable[[str, int], list[str]]   # (target, lines) -> lines
    # (target, lines) -> (an iterator of the tail's lines then each new one, a close() that ends it
    # from another thread)
    log_follow: Callable[[str, int], tuple] | None = None
    listen: str = ""
    socket_path: str = ""
    allowed_hosts: frozenset = frozenset({"localhost"})
    stopping: threading.Event = field(default_factory=threading.Event)
    followers: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(LOG_FOLLOWERS))


# Sent with every answer: the page loads nothing from elsewhere, is never framed, never
# sends a Referer.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
                               "img-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'none'",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
# Paths that read the fleet's state: 503 until it is complete.
NEEDS_READY = ("/metrics", "/api/ps", "/api/events")


class Handler(BaseHTTPRequestHandler):
    app: App = None  # set on the subclass made per server
    reads_need_token = True  # False only on the unix socket, which is the operator's alone
    protocol_version = "HTTP/1.1"
    server_version = "hermesctl-serve"

    def log_message(self, fmt, *args):  # quiet: the fleet's events are the interesting log
        pass

    # --- helpers -------------------------------------------------------------------------
    def _send(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        for k, v in {**SECURITY_HEADERS, **(headers or {})}.items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def _json(self, status: int, doc: dict, headers: dict | None = None) -> None:
        self._send(status, json.dumps(strict(doc), default=str, allow_nan=False).encode(), "application/json", headers)

    def _ps_document(self) -> dict:
        snap = self.app.state.snapshot()
        unreachable = [{"endpoint": name, "message": "did not answer", "reason": "unreachable"}
                       for name, ok in snap.endpoints.items() if not ok]
        return {"schema": "hermesctl.ps/v1", "gateways": snap.rows, "unreachable": unreachable,
                "source": {"kind": "serve", "listen": self.app.listen, "socket": self.app.socket_path,
                           "updated_at": snap.updated_at,
                           "age_s": round(max(0.0, time.time() - snap.updated_at), 3) if snap.updated_at else None},
                "version": snap.version, "scope": self.app.scope}

    def _admitted(self) -> bool:
        """The checks every request passes first; answers the refusal itself."""
        if not auth.host_allowed(self.headers, self.app.allowed_hosts):
            self._json(403, {"error": "this server does not serve that host name (Host header); "
                                      "add it with --allow-host if it is yours"})
            return False
        return True

    def _may_read(self) -> bool:
        if self.reads_need_token and not auth.has_token(self.headers, self.app.token):
            self._json(401, {"error": "this needs the server's token (Authorization: Bearer TOKEN)"},
                       {"WWW-Authenticate": 'Bearer realm="hermesctl"'})
            return False
        return True

    # --- GET -----------------------------------------------------------------------------
    def do_GET(self):  # noqa: N802 - http.server's naming
        if not self._admitted():
            return
        url = urlsplit(self.path)
        query = parse_qs(url.query)
        if url.path == "/":
            token = (query.get("token") or [None])[0]
            if token is not None:
                # The old address form: the token belongs after '#', which never leaves the browser.
                if auth.matches(token, self.app.token):
                    self._send(303, b"", "text/plain", {"Location": "/#token=" + quote(token, safe="")})
                else:
                    self._send(403, b"wrong token\n", "text/plain")
                return
            self._send(200, page(), "text/html; charset=utf-8")
            return
        if not self._may_read():
            return
        if url.path in NEEDS_READY and not self.app.state.ready.is_set():
            self._json(503, {"error": "starting: the first look at every endpoint is not in yet"},
                       {"Retry-After": "1"})
        elif url.path == "/metrics":
            self._send(200, metrics.render(self.app.state), "text/plain; version=0.0.4; charset=utf-8")
        elif url.path == "/api/ps":
            self._json(200, self._ps_document())
        elif url.path == "/api/overview":
            from hermesctl.serve.overview import document as overview_document
            self._json(200, overview_document(self.app.state))
        elif url.path == "/api/info":
            self._json(200, {"schema": "hermesctl.serve-info/v1", "scope": self.app.scope, "pid": os.getpid()})
        elif url.path == "/api/events":
            self._events()
        elif url.path == "/api/logs":
            self._logs(query)
        else:
            self._json(404, {"error": f"no such page {url.path}"})

    def _events(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.close_connection = True
        version = -1
        try:
            while not self.app.stopping.is_set():
                new = self.app.state.wait_for_change(version, SSE_KEEPALIVE_S)
                if new == version:
                    self.wfile.write(b": keepalive\n\n")
                else:
                    version = new
                    snap = self.app.state.snapshot()
                    doc = {"gateways": snap.rows, "events": snap.events[-100:], "version": snap.version,
                           "endpoints": snap.endpoints}
                    data = json.dumps(strict(doc), default=str, allow_nan=False).encode()
                    self.wfile.write(b"event: state\ndata: " + data + b"\n\n")
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, OSError):
            return

    def _logs(self, query: dict) -> None:
        target = (query.get("target") or [""])[0]
        try:
            lines = int((query.get("n") or ["100"])[0])
        except ValueError:
            lines = 100
        if (query.get("follow") or ["0"])[0] == "1" and self.app.log_follow is not None:
            if not self.app.followers.acquire(blocking=False):
                self._json(429, {"error": f"{LOG_FOLLOWERS} logs are followed already: close one"})
                return
            try:
                self._log_follow(target, max(1, min(lines, 2000)))
            finally:
                self.app.followers.release()
            return
        try:
            self._json(200, {"target": target, "lines": self.app.log_tail(target, max(1, min(lines, 2000)))})
        except Exception as exc:  # noqa: BLE001 - ours carry a one-line message
            from hermesctl.core.errors import describe
            self._json(400, {"error": describe(exc)})

    def _log_follow(self, target: str, lines: int) -> None:
        """Server-sent events: `lines` (a JSON list) as they come, `end` (a message) when the
        stream ends. A reader thread feeds a bounded queue; this one writes, with a keepalive
        that finds a browser gone, and then ends the exec (its close())."""
        try:
            source, close = self.app.log_follow(target, lines)
        except Exception as exc:  # noqa: BLE001 - ours carry a one-line message
            from hermesctl.core.errors import describe
            self._json(400, {"error": describe(exc)})
            return
        waiting: queue.Queue = queue.Queue(maxsize=LOG_QUEUE)
        done = threading.Event()

        def put(item) -> None:
            while not done.is_set():
                try:
                    waiting.put(item, timeout=1.0)
                    return
                except queue.Full:
                    continue

        def pump() -> None:
            from hermesctl.core.errors import describe
            try:
                for line in source:
                    put(("line", line))
                    if done.is_set():
                        return
                put(("end", "the log stream ended (the container stopped?)"))
            except Exception as exc:  # noqa: BLE001 - told to the page, which says so
                put(("end", describe(exc)))

        threading.Thread(target=pump, daemon=True, name="log-follow").start()
        try:
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Cache-Control", "no-store")
            self.send_header("X-Content-Type-Options", "nosniff")
            self.end_headers()
            self.close_connection = True
            while not self.app.stopping.is_set():
                try:
                    kind, text = waiting.get(timeout=LOG_KEEPALIVE_S)
                except queue.Empty:
                    self.wfile.write(b": keepalive\n\n")
                    self.wfile.flush()
                    continue
                batch, ended = [], None
                while True:
                    if kind == "line":
                        batch.append(text)
                    else:
                        ended = text
                        break
                    if len(batch) >= LOG_BATCH:
                        break
                    try:
                        kind, text = waiting.get_nowait()
                    except queue.Empty:
                        break
                if batch:
                    self.wfile.write(b"event: lines\ndata: " + json.dumps(batch).encode() + b"\n\n")
                if ended is not None:
                    self.wfile.write(b"event: end\ndata: " + json.dumps({"message": ended}).encode() + b"\n\n")
                self.wfile.flush()
                if ended is not None:
                    return
        except (BrokenPipeError, ConnectionResetError, OSError):
            return
        finally:
            done.set()
            try:
                close()
            except Exception:  # noqa: BLE001 - already closed
                pass

    # --- POST ----------------------------------------------------------------------------
    def do_POST(self):  # noqa: N802
        if not self._admitted():
            return
        url = urlsplit(self.path)
        parts = url.path.strip("/").split("/")
        if len(parts) != 3 or parts[:2] != ["api", "gateway"] or parts[2] not in ("start", "stop", "restart"):
            self._json(404, {"error": f"no such action {url.path}"})
            return
        if not auth.can_act(self.headers, self.app.token):
            self._json(403, {"error": "this request may not act: it needs the server's token "
                                      "(Authorization: Bearer), from this server's own page"})
            return
        try:
            length = int(self.headers.get("Content-Length", "0"))
            if not 0 < length <= MAX_BODY:
                raise ValueError("body size")
            target = json.loads(self.rfile.read(length))["target"]
            if not isinstance(target, str):
                raise ValueError("target")
        except (ValueError, KeyError, TypeError):
            self._json(400, {"error": 'expected a JSON body {"target": "CONTAINER:PROFILE"}'})
            return
        try:
            results = self.app.act(parts[2], target)
        except Exception as exc:  # noqa: BLE001
            from hermesctl.core.errors import describe
            self._json(400, {"error": describe(exc)})
            return
        ok = all(r.get("ok") for r in results)
        self._json(200 if ok else 500, {"results": results})


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def get_request(self):
        request, _ = super().get_request()
        return request, ("local", 0)  # http.server expects an address tuple


def make_servers(app: App, host: str, port: int, socket_path: str | None):
    handler = type("BoundHandler", (Handler,), {"app": app})
    local_handler = type("LocalHandler", (Handler,), {"app": app, "reads_need_token": False})
    ThreadingHTTPServer.daemon_threads = True
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    tcp = type("TCP", (ThreadingHTTPServer,), {"address_family": family})((host, port), handler)
    servers = [tcp]
    if socket_path:
        if os.path.exists(socket_path) and not _alive(socket_path):
            os.unlink(socket_path)  # a previous server's, left behind
        old = os.umask(0o177)
        try:
            unix = _UnixHTTPServer(socket_path, local_handler)
        finally:
            os.umask(old)
        os.chmod(socket_path, 0o600)
        servers.append(unix)
    return servers


def _alive(path: str) -> bool:
    probe = socket.socket(socket.AF_UNIX)
    probe.settimeout(0.5)
    try:
        probe.connect(path)
        return True
    except OSError:
        return False
    finally:
        probe.close()
