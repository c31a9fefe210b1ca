"""hermesctl boot-log CONTAINER: the reconciler's container-boot.log as a table."""
from hermesctl.errors import UsageError
from hermesctl.exit_codes import ExitStatus
from hermesctl.fleet import Fleet
from hermesctl.models import BootLogEntry
from hermesctl.output import Output
from hermesctl.targets import Target

READ_SCRIPT = r'tail -n "$1" "${HERMES_HOME:-/opt/data}/logs/container-boot.log" 2>/dev/null; exit 0'


def boot_log(out: Output, fleet: Fleet, target: Target, *, lines: int) -> ExitStatus:
    if target.profile is not None:
        raise UsageError(f"{target}: boot-log takes a container, not a gateway")
    container = fleet.one(target)
    text = fleet.run(container, ["sh", "-c", READ_SCRIPT, "hermesctl-boot-log", str(lines)]).stdout
    entries = [e for e in map(BootLogEntry.parse, text.splitlines()) if e]
    if out.json:
        out.document("boot-log", {"container": container.name,
                                  "entries": [{"time": e.time, **e.fields} for e in entries]})
        return ExitStatus.OK
    rows = [[e.time, e.fields.get("profile"), e.fields.get("prior_state"), e.fields.get("action"),
             e.fields.get("reason")] for e in entries]
    out.print(out.table(["TIME", "PROFILE", "PRIOR STATE", "ACTION", "REASON"], rows))
    return ExitStatus.OK
