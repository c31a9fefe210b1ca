"""hermesctl serve: a long-running process over the same endpoints as every other command. It
keeps the fleet's state current (serve.refresher), and serves it (serve.server) on a TCP
listener and a private unix socket; lifecycle buttons run the CLI's own lifecycle code."""
import ipaddress
import re
import sys
import threading
from dataclasses import asdict
from typing import Callable
from urllib.parse import quote

from hermesctl.backends.docker.fleet import Fleet
from hermesctl.core import interrupt
from hermesctl.core.errors import UsageError
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.model.targets import is_glob, parse_target
from hermesctl.render.output import Output
from hermesctl.serve import auth
from hermesctl.serve.client import default_socket_path, prepare_socket_dir
from hermesctl.serve.refresher import Refresher
from hermesctl.serve.server import App, make_servers
from hermesctl.serve.state import FleetState

DEFAULT_LISTEN = "127.0.0.1:9477"
HOST_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*")


def parse_listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    try:
        number = int(port)
        if not sep or not host or not 0 <= number <= 65535:
            raise ValueError
        ipaddress.ip_address(host)
    except ValueError:
        raise UsageError(f"--listen {text!r}: expected ADDRESS:PORT, e.g. {DEFAULT_LISTEN}") from None
    return host, number


def _is_loopback(host: str) -> bool:
    return ipaddress.ip_address(host).is_loopback


def _actions(make_fleet: Callable[[], Fleet], refresher: Refresher):
    from hermesctl.engine.lifecycle import apply

    def act(verb: str, target_text: str) -> list[dict]:
        target = parse_target(target_text)
        if target.profile is None:
            raise UsageError(f"{target_text}: name a gateway as CONTAINER:PROFILE")
        fleet = make_fleet()  # one per request: a Fleet is not shared between threads
        results = []
        # As `hermesctl gateway start`: a profile without a slot is registered, then started.
        for sel in fleet.select([target], unslotted=verb in ("start", "restart")):
            results += [asdict(r) for r in apply(fleet, sel, verb, timeout=20.0, settle=1.0)]
        refresher.refresh_now()
        return results

    def log_tail(target_text: str, lines: int) -> list[str]:
        from hermesctl.agent.client import tail_argv as _tail_argv
        target = parse_target(target_text)
        if target.profile is None or is_glob(target.profile) or is_glob(target.container):
            raise UsageError(f"{target_text}: name one gateway as CONTAINER:PROFILE")
        fleet = make_fleet()
        container = fleet.one(target)
        result = fleet.run(container, _tail_argv(target.profile, lines, False))
        return result.stdout.splitlines()[1:]

    def log_follow(target_text: str, lines: int):
        """The page's followed log: one exec of the agent's `tail --follow` with the lifeline (its
        stdin): close() ends the exec, and Docker closing that stdin ends the follower."""
        from hermesctl.agent.client import tail_argv as _tail_argv
        target = parse_target(target_text)
        if target.profile is None or is_glob(target.profile) or is_glob(target.container):
            raise UsageError(f"{target_text}: name one gateway as CONTAINER:PROFILE")
        fleet = make_fleet()
        container = fleet.one(target)
        stream = fleet.exec_stream(container, _tail_argv(target.profile, lines, True), stderr=False, stdin=True)
        return _log_lines(stream), stream.close

    return act, log_tail, log_follow


LOG_LINE_MAX = 8192  # bytes of one log line shown (the gateway, hermes' code, writes the log)


def _log_lines(stream):
    """A tail's lines from its exec's chunks: the first ({"pid": N}) dropped, each line bounded,
    and a run without a newline cut at LOG_LINE_MAX (the memory held is bounded)."""
    from hermesctl.agent.client import stream_lines
    first = True
    for raw in stream_lines(stream, max_line=LOG_LINE_MAX):
        if first:
            first = False
            continue
        text = raw[:LOG_LINE_MAX].decode("utf-8", "replace")
        yield text + ("…" if len(raw) > LOG_LINE_MAX else "")


def parse_allowed_hosts(names: list[str]) -> frozenset[str]:
    """--allow-host names: DNS names (what a Host header may carry besides IP literals)."""
    allowed = {"localhost"}
    for name in names:
        lowered = name.lower()
        if not HOST_NAME.fullmatch(lowered) or len(lowered) > 253:
            raise UsageError(f"--allow-host {ascii(name)}: expected a DNS name such as hermesctl-serve or ops.example.com")
        allowed.add(lowered)
    return frozenset(allowed)


def serve(out: Output, make_fleet: Callable[[], Fleet], scope: dict, *, listen: str,
          token_file: str | None, socket_path: str | None, interval: float,
          allow_hosts: list[str] = (), usage_interval: float = 15.0, budgets: dict | None = None,
          probe_interval: float = 30.0) -> ExitStatus:
    host, port = parse_listen(listen)
    allowed_hosts = parse_allowed_hosts(list(allow_hosts))
    if not _is_loopback(host) and not token_file:
        raise UsageError(f"refusing to listen on {host} without --token-file: "
                         "a non-loopback listener needs a token you chose")
    try:
        token = auth.read_token_file(token_file) if token_file else auth.new_token()
    except (OSError, ValueError) as exc:
        raise UsageError(f"--token-file: {exc}") from None
    socket_path = socket_path or default_socket_path()
    prepare_socket_dir(socket_path)

    state = FleetState()
    refresher = Refresher(make_fleet(), state, interval=interval, make_fleet=make_fleet)
    act, log_tail, log_follow = _actions(make_fleet, refresher)
    app = App(state=state, token=token, scope=scope, act=act, log_tail=log_tail, log_follow=log_follow,
              listen=f"{host}:{port}", socket_path=socket_path, allowed_hosts=allowed_hosts)
    try:
        servers = make_servers(app, host, port, socket_path)
    except OSError as exc:
        raise UsageError(f"cannot listen on {listen} / {socket_path}: {exc.strerror or exc}") from None
    refresher.start()
    from hermesctl.serve.usage_feed import UsageFeed
    state.usage_feed = UsageFeed(refresher.live, refresher.fleet, interval=usage_interval, budgets=budgets,
                                 ready=getattr(state, "ready", None))
    state.usage_feed.start()
    if probe_interval > 0:  # hermes_gateway_serving: the API servers' /health, asked in each container
        from hermesctl.serve.serving_feed import ServingFeed
        state.serving_feed = ServingFeed(refresher.live, refresher.fleet, interval=probe_interval,
                                         ready=getattr(state, "ready", None))
        state.serving_feed.start()
    for server in servers:
        threading.Thread(target=server.serve_forever, daemon=True).start()
    bound = servers[0].server_address
    url = f"http://{host if ':' not in host else f'[{host}]'}:{bound[1]}/"
    out.line(f"hermesctl serve: {url} (metrics at {url}metrics), socket {socket_path}")
    if not token_file:
        # After '#': the browser never sends it anywhere; the page keeps it in its own tab.
        out.line(f"token (shown once): {token}  ->  {url}#token={quote(token, safe='')}")
    sys.stdout.flush()
    try:
        interrupt.wait_forever()
    finally:
        app.stopping.set()
        refresher.stop()
        state.usage_feed.stop()
        if getattr(state, "serving_feed", None) is not None:
            state.serving_feed.stop()
        for server in servers:
            server.shutdown()
            server.server_close()
        import os
        if os.path.exists(socket_path):
            os.unlink(socket_path)
    return ExitStatus.OK
