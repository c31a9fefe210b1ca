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


def gateway_status(run: "Run", targets: list[str]) -> int:
    from hermesctl.commands.gateway import status
    parsed = parse_targets(targets)  # a bad target is a usage error before any endpoint is contacted
    return status(run.out, run.fleet(), parsed)


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
