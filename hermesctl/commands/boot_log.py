"""hermesctl boot-log CONTAINER: the reconciler's container-boot.log (the agent's `boot-log`)."""
from hermesctl.backends.docker.fleet import Fleet
from hermesctl.core.errors import UsageError
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.model.targets import Target
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich: not on the quick read path (hermesctl.cli.quick_read)
    from hermesctl.render.output import Output


def _prior(value):
    """The log line says `prior_state=None` (Python's word, as the in-container contract fixes
    it) when there was no state file; the table says `none`. --json keeps the line's text."""
    return "none" if value in (None, "None") else value


def boot_log(out: "Output", fleet: Fleet, target: Target, *, lines: int) -> ExitStatus:
    if target.profile is not None:
        raise UsageError(f"{target}: boot-log takes a container, not a gateway")
    container = fleet.one(target)
    if lines < 0:
        raise UsageError(f"--tail must be 0 or more, not {lines}")
    entries = fleet.ask(container, "boot-log", "--tail", str(lines))["entries"]
    if out.json:
        out.document("boot-log", {"container": container.name, "entries": entries})
        return ExitStatus.OK
    rows = [[e.get("time"), e.get("profile"), _prior(e.get("prior_state")), e.get("action"), e.get("reason")]
            for e in entries]
    out.print(out.table(["TIME", "PROFILE", "PRIOR STATE", "ACTION", "REASON"], rows))
    return ExitStatus.OK
