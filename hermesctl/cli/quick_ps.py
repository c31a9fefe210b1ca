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

from hermesctl.cli import quick_options

# `ps`'s own options (after the command), as hermesctl.cli.app.ps declares them.
_PS_VALUES = {"--timeout": "ps_timeout"}
_PS_FLAGS = {"--json": "json", "--no-headers": "no_headers", "--wide": "wide", "-w": "wide",
             "--quiet": "quiet", "-q": "quiet", "--direct": "direct"}


def parse(argv: list[str]) -> dict | None:
    """The options of a plain `ps` invocation, or None when it is anything else: the global
    options (hermesctl.cli.quick_options), `ps`'s own (`ps_timeout`: its --timeout), `targets`."""
    split = quick_options.split(argv)
    if split is None:
        return None
    glob, i = split
    if i >= len(argv) or argv[i] != "ps":
        return None
    opts: dict = {**glob, "ps_timeout": None, "wide": False, "quiet": False, "direct": False, "targets": []}
    i += 1
    while i < len(argv):
        token = argv[i]
        if token in _PS_FLAGS:
            opts[_PS_FLAGS[token]] = True
            i += 1
        elif quick_options.option_name(token) in _PS_VALUES:
            taken = quick_options.option_value(argv, i)
            if taken is None or opts[_PS_VALUES[taken[0]]] is not None:  # no value, or given twice
                return None
            opts[_PS_VALUES[taken[0]]], i = taken[1], taken[2]
        elif token.startswith("-"):
            return None
        else:
            opts["targets"].append(token)
            i += 1
    return opts


def _valid(opts: dict):
    """The parsed targets, or None when any value is one the full CLI would refuse."""
    from hermesctl.core.errors import HermesctlError
    from hermesctl.model.targets import parse_targets
    if not quick_options.checked(opts) or not quick_options.timeout_ok(opts["ps_timeout"]):
        return None
    try:
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
        from hermesctl.config.compose import resolve_scope
        scope = resolve_scope(hosts=opts["hosts"], contexts=opts["contexts"], project=opts["project"],
                              fleet_file=opts["fleet_file"], swarm=opts["swarm"], engine=opts["engine"])
        status = None if opts["direct"] else _served(opts, targets, scope.key())
        if status is None:
            from hermesctl.cli import quick_direct
            status = quick_direct.run(opts, targets, scope)
    except BrokenPipeError:  # `hermesctl ps | head -1`: the reader has what it wanted
        return 1
    except Exception:  # noqa: BLE001 - the full CLI runs instead, and reports it in one line
        # (rows are drawn before anything is written, so nothing was printed yet)
        if os.environ.get("HERMESCTL_DEBUG"):
            raise
        return None
    return status


def _served(opts: dict, targets: list, scope: dict) -> int | None:
    from hermesctl.serve.client import ps_from_server
    doc = ps_from_server(scope)
    if doc is None:
        return None
    from hermesctl.commands.ps_served import render
    status = render(doc, targets, json_output=opts["json"], wide=opts["wide"], quiet=opts["quiet"],
                    no_headers=opts["no_headers"])
    return None if status is None else int(status)


if __name__ == "__main__":  # pragma: no cover - for timing by hand
    sys.exit(run(sys.argv[1:]) or 0)
