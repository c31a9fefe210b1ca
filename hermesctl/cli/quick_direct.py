"""A direct `hermesctl ps` on local Docker sockets, before typer, rich or the Docker SDK are
imported (issue 18): the containers are asked exactly as the full CLI asks them (the same
engine: hermesctl.engine.rows over a Fleet), through hermesctl.backends.docker.unix_api, and the table
is drawn with hermesctl.render.plain_table as a served `ps` is. What the user waits for is then Python's
start, ~20 ms of imports, and the execs.

hermesctl.cli.quick_ps hands over a plain invocation it parsed and checked. Anything this path does
not cover returns None before a container is asked, and the full CLI runs instead: a --fleet
file, --swarm, a Docker context, a tcp:// or ssh:// endpoint, TLS.
"""
import sys

from hermesctl.core.exit_codes import ExitStatus


def _warn(text: str) -> None:
    from hermesctl.render.plain_table import ansi, printable, wants_colour
    sys.stderr.write(ansi([[(printable(f"hermesctl: {text}"), "yellow")]], colour=wants_colour(sys.stderr)))


def _error(text: str) -> None:
    from hermesctl.render.plain_table import ansi, printable, wants_colour
    sys.stderr.write(ansi([[(printable(f"hermesctl: {text}"), "red")]], colour=wants_colour(sys.stderr)))


def _fleet(specs, scope, *, timeout: float):
    """The fleet over the local endpoints (cli/run.local_fleet, as the quick read commands'),
    narrowed to the request's scope (compose.resolve_scope) as the full CLI narrows it."""
    from hermesctl.cli.run import local_fleet
    fleet = local_fleet(specs, project=scope.named_project, timeout=timeout, engine=scope.engine)
    scope.narrow(fleet)
    return fleet


def run(opts: dict, targets: list, scope) -> int | None:
    """The exit status of a direct `ps` answered here, or None: the full CLI takes over."""
    if opts["fleet_file"] or opts["swarm"] or opts["contexts"]:
        return None
    from hermesctl.config.endpoints import resolve_local
    from hermesctl.core.errors import HermesctlError
    from hermesctl.cli.quick_options import exec_timeout
    try:
        specs = resolve_local(opts["hosts"])
    except HermesctlError:
        return None  # the full CLI says what is wrong with it
    if specs is None:
        return None
    timeout = exec_timeout(opts["timeout"], opts["ps_timeout"])
    try:
        fleet = _fleet(specs, scope, timeout=timeout)
    except HermesctlError as exc:
        _error(exc.message)
        return int(exc.status)
    return answer(fleet, scope.here, opts, targets)


def answer(fleet, here, opts: dict, targets: list) -> int:
    """`ps` over a fleet built here: the one pipeline (engine.rows.ps_document, then ps_rows'
    printing, warnings and exit code), as the full CLI runs it."""
    from hermesctl.render import ps_rows
    from hermesctl.core.errors import HermesctlError
    try:
        if not fleet.containers():
            _warn(fleet.empty_reason(here, project_given=bool(opts["project"])))
        from hermesctl.engine.rows import ps_document
        doc = ps_document(fleet, targets)
    except HermesctlError as exc:
        _error(exc.message)
        return int(exc.status)
    try:
        ps_rows.print_plain(doc, json_output=opts["json"], quiet=opts["quiet"], wide=opts["wide"],
                            no_headers=opts["no_headers"])
    except BrokenPipeError:  # `hermesctl ps | head -1`: the reader has what it wanted
        return int(ExitStatus.FAILED)
    ps_rows.print_warnings(doc)
    return int(ps_rows.exit_status(doc))
