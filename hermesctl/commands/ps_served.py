"""`hermesctl ps` answered by a running `hermesctl serve` (its unix socket) instead of by one
exec per container: the same rows and columns as direct ps (hermesctl.render.ps_rows), with a note of
where they came from and how old they are. Targets are matched on the served rows by the rule
every path uses (targets.selected_names); a target the served rows cannot resolve (an id
prefix, ENDPOINT/…) sends the command back to the direct path.

Stdlib only (drawn with hermesctl.render.plain_table, not rich): hermesctl.cli.quick_ps runs this before
typer, rich or the Docker SDK are imported, so that a served `ps` costs little more than
Python's own start."""
import fnmatch
import sys
from dataclasses import fields

from hermesctl.core.errors import HermesctlError
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.model import results
from hermesctl.model.targets import Candidate, Target, selected_names
from hermesctl.render.documents import document_text
from hermesctl.render.plain_table import ansi, layout, printable, wants_colour
from hermesctl.render.ps_rows import GatewayRow, exit_status, table_cells

_FIELDS = [f.name for f in fields(GatewayRow)]


def _select(rows: list[GatewayRow], targets: list[Target]) -> list[GatewayRow] | None:
    if not targets:
        return rows
    chosen = []
    known = list({(r.endpoint, r.container): Candidate(r.container, "", r.service, r.endpoint) for r in rows}.values())
    for t in targets:
        if t.endpoint is not None:
            return None
        # The same rule as every other path (targets.selected_names); rows carry no id, so an id
        # prefix selects nothing here and goes direct.
        try:
            names = set(selected_names(t.container, known))
        except HermesctlError:
            return None
        hits = [r for r in rows if r.container in names
                and (t.profile is None or (r.profile is not None and fnmatch.fnmatchcase(r.profile, t.profile)))]
        if not hits:
            return None
        chosen += [r for r in hits if r not in chosen]
    return chosen


def render(doc: dict, targets: list[Target], *, json_output: bool, wide: bool, quiet: bool,
           no_headers: bool, stdout=None, stderr=None) -> ExitStatus | None:
    """Print the served document as `ps` would; None (nothing printed) when the targets need
    the direct path."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    rows = [GatewayRow(**{k: v for k, v in r.items() if k in _FIELDS})
            for r in doc.get("gateways", []) if isinstance(r, dict)]
    rows = _select(rows, targets)
    if rows is None:
        return None
    source = doc.get("source", {})
    unreachable = doc.get("unreachable", [])
    if json_output:
        body = {"gateways": [{**{k: getattr(r, k) for k in _FIELDS}, "target": r.target} for r in rows],
                "source": source}
        stdout.write(document_text("ps", body, unreachable))
    elif quiet:
        stdout.write("".join(printable(r.target) + "\n" for r in rows if r.profile is not None))
    else:
        columns, cells = table_cells(rows, multi=len({r.endpoint for r in rows}) > 1, wide=wide)
        stdout.write(ansi(layout(columns, cells, headers=not no_headers), colour=wants_colour(stdout)))
        age = source.get("age_s")
        note = (f"(from hermesctl serve at {source.get('socket')}, {age if age is not None else '?'} s old;"
                " --direct asks the containers)")
        stderr.write(ansi([[(printable(note), "dim")]], colour=wants_colour(stderr)))
    warn = wants_colour(stderr)
    for u in unreachable:
        endpoint = u.get("endpoint") if isinstance(u, dict) else u
        stderr.write(ansi([[(printable(f"hermesctl: endpoint {endpoint} did not answer"), "yellow")]], colour=warn))
    return results.exit_status([], unreachable, base=exit_status(rows))


def show(out, doc: dict, targets: list[Target], *, wide: bool, quiet: bool) -> ExitStatus | None:
    """render() with the settings of the run's Output (the typer path)."""
    stdout = out.console.file if out.console.file is not sys.stdout else None
    return render(doc, targets, json_output=out.json, wide=wide, quiet=quiet, no_headers=out.no_headers,
                  stdout=stdout)
