"""The read commands' bodies after their options are parsed: what `hermesctl gateway status`,
`logs`, `events`, `profile list`, `boot-log`, `doctor` and `usage` do with a Run. The full CLI
(hermesctl.cli.app, typer) and the quick read path (hermesctl.cli.quick_read, before typer, rich or the
Docker SDK are imported) both call these, so that each command checks, asks and prints with the
same code whichever path parsed it. Targets and values are checked before the fleet is built, so
that a bad one is a usage error (2) without any endpoint contacted. Each returns the command's
status before hermesctl.cli.run.finish. Stdlib only."""
import re
import sys
from typing import TYPE_CHECKING, Optional

from hermesctl.core.errors import UsageError
from hermesctl.model.targets import parse_target, parse_targets

if TYPE_CHECKING:  # the run is made above this layer (hermesctl.cli.app, hermesctl.cli.quick_read)
    from hermesctl.cli.run import Run

SOURCE = re.compile(r"[A-Za-z0-9_.:-]{1,64}")


def gateway_status(run: "Run", targets: list[str], *, direct: bool = False) -> int:
    parsed = parse_targets(targets)  # a bad target is a usage error before any endpoint is contacted
    if not direct and not run.swarm:
        status = _served_gateway_status(run, parsed)
        if status is not None:
            return status
    from hermesctl.commands.gateway import status
    return status(run.out, run.fleet(), parsed)


def _served_gateway_status(run: "Run", parsed: list) -> int | None:
    """The answer of a running `hermesctl serve` watching this scope (its ps document, asked once
    per process: serve.client.ps_from_server), reported by the code a direct answer is; None: the
    containers are asked."""
    from hermesctl.serve.client import ps_from_server
    doc = ps_from_server(run.scope())
    if doc is None:
        return None
    from hermesctl.commands.gateway_served import gateways
    found = gateways(doc, parsed)
    if found is None:
        return None
    from hermesctl.render.gateway_status import report
    # As Run.fleet sets it for the fleet serve watches: an ENDPOINT column when it spans several.
    run.out.several_endpoints = len(doc.get("endpoints") or []) > 1
    status = report(run.out, found)
    if not run.out.json:
        from hermesctl.commands.ps_served import source_note
        source_note(doc.get("source") or {}, sys.stderr)
    return status


def events(run: "Run", targets: list[str]) -> int:
    from hermesctl.commands.events import events as run_events
    parsed = parse_targets(targets)
    return run_events(run.out, run.fleet(), parsed)


def profile_list(run: "Run", targets: list[str]) -> int:
    from hermesctl.commands.profile import list_command
    parsed = parse_targets(targets)
    return list_command(run.out, run.fleet(), parsed)


def logs(run: "Run", targets: list[str], *, lines: int, follow: bool, raw: bool) -> int:
    from hermesctl.commands.logs import logs as run_logs
    parsed = parse_targets(targets)
    escape = sys.stdout.isatty() and not raw
    return run_logs(run.out, run.fleet(), parsed, lines=lines, follow=follow, escape=escape)


def boot_log(run: "Run", container: str, *, lines: int) -> int:
    from hermesctl.commands.boot_log import boot_log as run_boot_log
    parsed = parse_target(container)
    return run_boot_log(run.out, run.fleet(), parsed, lines=lines)


def doctor(run: "Run", targets: list[str], *, fix: bool) -> int:
    from hermesctl.commands.doctor import doctor as run_doctor
    parsed = parse_targets(targets)
    return run_doctor(run.out, run.fleet(), parsed, fix=fix)


def usage(run: "Run", targets: list[str], *, since: str, by: str, source: Optional[str], file: Optional[str]) -> int:
    from hermesctl.commands.usage import usage as run_usage
    from hermesctl.model.usage import GROUPINGS, parse_since
    window = parse_since(since)
    if by not in GROUPINGS:
        raise UsageError(f"--by must be one of {', '.join(GROUPINGS)}, not {by[:40]!r}")
    if source is not None and not SOURCE.fullmatch(source):
        raise UsageError("--source: a platform name (letters, digits, _ . : -)")
    parsed = parse_targets(targets)
    spec = None
    budget_file = file or run.fleet_file
    if budget_file:
        from hermesctl.config.fleetfile import load_fleet_file
        spec = load_fleet_file(budget_file)
    return run_usage(run.out, run.fleet(), parsed, window, by=by, source=source, spec=spec)
