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
from dataclasses import asdict

from hermesctl.core.exit_codes import ExitStatus


def _warn(text: str) -> None:
    from hermesctl.render.plain_table import ansi, printable, wants_colour
    sys.stderr.write(ansi([[(printable(f"hermesctl: {text}"), "yellow")]], colour=wants_colour(sys.stderr)))


def _error(text: str) -> None:
    from hermesctl.render.plain_table import ansi, printable, wants_colour
    sys.stderr.write(ansi([[(printable(f"hermesctl: {text}"), "red")]], colour=wants_colour(sys.stderr)))


def _fleet(specs, *, project: str | None, timeout: float, engine: str | None = None):
    """The fleet over the local endpoints, narrowed to the compose project in use as the full
    CLI narrows it (hermesctl.cli.app.Run); and the compose directory it runs in, if any."""
    from hermesctl.config import compose
    from hermesctl.backends.docker import unix_api
    from hermesctl.backends.docker.fleet import Fleet, Unreachable
    from hermesctl.core.errors import UsageError, describe
    from hermesctl.core.parallel import fan_out
    here = None if project else compose.detect()
    named = project or (here.env_project if here else None)
    unique = list({spec.url: spec for spec in specs}.values())
    connected = fan_out(lambda spec: unix_api.connect(spec, timeout=timeout, engine=engine), unique)
    for o in connected:
        if not o.ok and isinstance(o.error, UsageError):
            raise o.error  # --engine names the other engine: refused as the full CLI refuses it
    endpoints = [o.value for o in connected if o.ok]
    if not endpoints:
        raise next(o.error for o in connected)
    fleet = Fleet(endpoints=endpoints, project=named, configured=len(unique), exec_timeout=timeout)
    fleet.unreachable.extend(Unreachable(o.item.name, describe(o.error)) for o in connected if not o.ok)
    if here and not named:
        found = compose.project_of(here, fleet.containers())
        fleet.narrow_to_compose(found, None if found else str(here.directory))
    return fleet, here


def run(opts: dict, targets: list) -> int | None:
    """The exit status of a direct `ps` answered here, or None: the full CLI takes over."""
    if opts["fleet_file"] or opts["swarm"] or opts["contexts"]:
        return None
    from hermesctl.config.endpoints import resolve_local
    from hermesctl.core.errors import HermesctlError
    from hermesctl.config.settings import DEFAULT_EXEC_TIMEOUT
    try:
        specs = resolve_local(opts["hosts"])
    except HermesctlError:
        return None  # the full CLI says what is wrong with it
    if specs is None:
        return None
    timeout = float(opts["timeout"][-1]) if opts["timeout"] else DEFAULT_EXEC_TIMEOUT
    try:
        fleet, here = _fleet(specs, project=opts["project"], timeout=timeout, engine=opts.get("engine"))
        if not fleet.containers():
            _warn(fleet.empty_reason(here, project_given=bool(opts["project"])))
        from hermesctl.engine.rows import exit_status, ps_answer
        rows, interrupted = ps_answer(fleet, targets)
    except HermesctlError as exc:
        _error(exc.message)
        return int(exc.status)
    from hermesctl.engine import journal
    try:
        _print(fleet, rows, interrupted, opts)
    except BrokenPipeError:  # `hermesctl ps | head -1`: the reader has what it wanted
        return int(ExitStatus.FAILED)
    for r in interrupted:
        _warn(f"interrupted: {r.what} (at step {r.step}): `{journal.RECOVER_HINT}` finishes or undoes it")
    for u in fleet.unreachable:
        _warn(u.warning())
    from hermesctl.model.results import exit_status as overall
    status = exit_status(rows)
    if status in (ExitStatus.OK, ExitStatus.NOT_RUNNING):
        status = overall([], fleet.unreachable, base=ExitStatus(status))
    return int(status)


def _print(fleet, rows, interrupted, opts: dict) -> None:
    from hermesctl.render.plain_table import ansi, layout, printable, wants_colour
    if opts["json"]:
        from hermesctl.render.documents import document_text
        from hermesctl.engine import journal
        body = {"gateways": [asdict(r) | {"target": r.target} for r in rows],
                "interrupted_operations": [journal.describe(r) for r in interrupted]}
        sys.stdout.write(document_text("ps", body, [asdict(u) for u in fleet.unreachable]))
    elif opts["quiet"]:
        sys.stdout.write("".join(printable(r.target) + "\n" for r in rows if r.profile is not None))
    else:
        from hermesctl.render.ps_rows import table_cells
        columns, cells = table_cells(rows, multi=fleet.configured > 1, wide=opts["wide"])
        sys.stdout.write(ansi(layout(columns, cells, headers=not opts["no_headers"]), colour=wants_colour(sys.stdout)))
    sys.stdout.flush()
