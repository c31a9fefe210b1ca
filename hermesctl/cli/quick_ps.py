"""`hermesctl ps` before typer, rich or the Docker SDK are imported: answered by a running
`hermesctl serve` (what a user waits for is then Python's start plus a few milliseconds), or
else, on local Docker sockets, by asking the containers directly (hermesctl.cli.quick_direct).

Only a plain invocation takes this path: global options -H/--host, -c/--context, -p/--project,
--fleet, --swarm, --engine, --json, --no-headers, --timeout; then `ps` with targets and --json, --wide/-w,
--quiet/-q, --no-headers, --timeout, --direct. Every value is checked as the full CLI checks it.
Anything else (--watch, --help, an unknown or malformed option, a bad value, targets the served
rows cannot resolve and endpoints quick_direct does not cover) returns None, and the full CLI
runs as if this module did not exist: it prints the errors and asks the containers.
"""
import os
import sys

_GLOBAL_VALUES = {"-H": "hosts", "--host": "hosts", "-c": "contexts", "--context": "contexts",
                  "-p": "project", "--project": "project", "--fleet": "fleet_file", "--swarm": "swarm",
                  "--timeout": "timeout", "--engine": "engine"}
_GLOBAL_FLAGS = {"--json": "json", "--no-headers": "no_headers"}
_PS_VALUES = {"--timeout": "timeout"}
_PS_FLAGS = {"--json": "json", "--no-headers": "no_headers", "--wide": "wide", "-w": "wide",
             "--quiet": "quiet", "-q": "quiet", "--direct": "direct"}


def parse(argv: list[str]) -> dict | None:
    """The options of a plain `ps` invocation, or None when it is anything else."""
    opts: dict = {"hosts": [], "contexts": [], "project": None, "fleet_file": None, "swarm": None, "engine": None,
                  "timeout": [], "json": False, "no_headers": False, "wide": False, "quiet": False,
                  "direct": False, "targets": []}
    command = None
    i = 0
    while i < len(argv):
        token = argv[i]
        values, flags = (_PS_VALUES, _PS_FLAGS) if command else (_GLOBAL_VALUES, _GLOBAL_FLAGS)
        name, eq, inline = token.partition("=") if token.startswith("--") else (token, "", "")
        if name in values:
            if eq:
                value = inline
            elif i + 1 < len(argv):
                i += 1
                value = argv[i]
            else:
                return None
            key = values[name]
            if isinstance(opts[key], list):
                opts[key].append(value)
            elif opts[key] is not None:  # given twice: the full CLI decides
                return None
            else:
                opts[key] = value
        elif token in flags:
            opts[flags[token]] = True
        elif token.startswith("-"):
            return None
        elif command is None:
            if token != "ps":
                return None
            command = token
        else:
            opts["targets"].append(token)
        i += 1
    return opts if command == "ps" else None


def _valid(opts: dict):
    """The parsed targets, or None when any value is one the full CLI would refuse."""
    from hermesctl.config.endpoint_urls import check_context, check_endpoint
    from hermesctl.core.errors import HermesctlError
    from hermesctl.model.names import COMPOSE_PROJECT_NAME
    from hermesctl.model.targets import parse_targets
    try:
        for url in opts["hosts"]:
            check_endpoint(url)
        for name in opts["contexts"]:
            check_context(name)
        for text in opts["timeout"]:
            if not 0 < float(text) <= 86400:
                return None
        if opts["project"] is not None and not COMPOSE_PROJECT_NAME.fullmatch(opts["project"]):
            return None
        if opts["engine"] is not None and opts["engine"] not in ("docker", "podman"):
            return None
        return parse_targets(opts["targets"])
    except (HermesctlError, ValueError):
        return None


def run(argv: list[str]) -> int | None:
    """The exit status of `ps` answered by the server, or None: the full CLI takes over."""
    opts = parse(argv)
    if opts is None:
        return None
    targets = _valid(opts)
    if targets is None:
        return None
    try:
        status = None if opts["direct"] else _served(opts, targets)
        if status is None:
            from hermesctl.cli import quick_direct
            status = quick_direct.run(opts, targets)
    except BrokenPipeError:  # `hermesctl ps | head -1`: the reader has what it wanted
        return 1
    except Exception:  # noqa: BLE001 - the full CLI runs instead, and reports it in one line
        # (rows are drawn before anything is written, so nothing was printed yet)
        if os.environ.get("HERMESCTL_DEBUG"):
            raise
        return None
    return status


def _served(opts: dict, targets: list) -> int | None:
    from hermesctl.serve.client import ps_from_server
    from hermesctl.config.compose import request_scope
    scope = request_scope(hosts=opts["hosts"], contexts=opts["contexts"], project=opts["project"],
                          fleet_file=opts["fleet_file"], swarm=opts["swarm"], engine=opts["engine"])
    doc = ps_from_server(scope)
    if doc is None:
        return None
    from hermesctl.commands.ps_served import render
    status = render(doc, targets, json_output=opts["json"], wide=opts["wide"], quiet=opts["quiet"],
                    no_headers=opts["no_headers"])
    return None if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover - for timing by hand
    sys.exit(run(sys.argv[1:]) or 0)
