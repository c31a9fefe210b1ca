"""`hermesctl ps` answered by a running `hermesctl serve` (its unix socket) instead of by one
exec per container: the same rows, rendered by the same code, with a note of where they came
from and how old they are. Targets are matched on the served rows (container and profile globs);
a target the served rows cannot resolve (an id prefix, a compose service name, ENDPOINT/…) sends
the command back to the direct path."""
import fnmatch
from dataclasses import dataclass, fields

from hermesctl.commands.ps import render_table
from hermesctl.engine.rows import GatewayRow, exit_status
from hermesctl import results
from hermesctl.exit_codes import ExitStatus
from hermesctl.output import Output
from hermesctl.targets import Target

_FIELDS = {f.name for f in fields(GatewayRow)}


@dataclass
class _Scope:
    configured: int


def _select(rows: list[GatewayRow], targets: list[Target]) -> list[GatewayRow] | None:
    if not targets:
        return rows
    chosen = []
    for t in targets:
        if t.endpoint is not None:
            return None
        hits = [r for r in rows if fnmatch.fnmatchcase(r.container, t.container)
                and (t.profile is None or (r.profile is not None and fnmatch.fnmatchcase(r.profile, t.profile)))]
        if not hits:
            return None
        chosen += [r for r in hits if r not in chosen]
    return chosen


def show(out: Output, doc: dict, targets: list[Target], *, wide: bool, quiet: bool) -> ExitStatus | None:
    """Render the served document; None when the targets need the direct path."""
    rows = [GatewayRow(**{k: v for k, v in r.items() if k in _FIELDS}) for r in doc.get("gateways", [])]
    rows = _select(rows, targets)
    if rows is None:
        return None
    source = doc.get("source", {})
    unreachable = doc.get("unreachable", [])
    if out.json:
        out.document("ps", {"gateways": [{**{k: getattr(r, k) for k in _FIELDS}, "target": r.target} for r in rows],
                            "source": source}, unreachable=unreachable)
    elif quiet:
        for r in rows:
            if r.profile is not None:
                out.line(r.target)
    else:
        # Plain styled lines (as ps --watch draws): a rich Table of 200 rows costs ~200 ms.
        out.print(render_table(out, _Scope(configured=len({r.endpoint for r in rows})), rows, wide=wide, live=True))
        age = source.get("age_s")
        out.err.print(f"(from hermesctl serve at {source.get('socket')}, {age if age is not None else '?'} s old;"
                      " --direct asks the containers)", style="dim")
    for u in unreachable:
        out.warn(f"endpoint {u.get('endpoint')} did not answer")
    return results.exit_status([], unreachable, base=exit_status(rows))
