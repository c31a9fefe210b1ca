"""`hermesctl ps` answered by a running `hermesctl serve` (its unix socket) instead of by one
exec per container. The server's document is the one every ps path builds (ps_rows.document);
here it is narrowed to the targets and printed, warned about and judged exactly as a direct `ps`
(ps_rows), with a note of where it came from and how old it is. Targets are matched on the
served rows by the rule every path uses (targets.selected_names); a target the served rows
cannot resolve (an id prefix, ENDPOINT/…) sends the command back to the direct path.

Stdlib only (drawn with hermesctl.render.plain_table, not rich): hermesctl.cli.quick_ps runs this before
typer, rich or the Docker SDK are imported, so that a served `ps` costs little more than
Python's own start."""
import fnmatch
import sys
from types import SimpleNamespace

from hermesctl.core.errors import HermesctlError
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.engine.journal import instance_names
from hermesctl.model.targets import Candidate, Target, selected_names
from hermesctl.render import ps_rows
from hermesctl.render.plain_table import ansi, printable, wants_colour
from hermesctl.render.ps_rows import GatewayRow


def _select(rows: list[GatewayRow], targets: list[Target]) -> list[GatewayRow] | None:
    """The rows a direct `ps` shows for these targets (engine.rows.collect): every row of a
    selected container that is about the container itself (stopped, did not answer, booting),
    and its gateways the target's profile selects. None: the direct path must decide."""
    if not targets:
        return rows
    chosen: set[int] = set()
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
        hits = [i for i, r in enumerate(rows) if r.container in names and (
            r.profile is None or t.profile is None or fnmatch.fnmatchcase(r.profile, t.profile))]
        if not hits or (t.profile is not None and all(rows[i].profile is None for i in hits)):
            return None  # nothing, or no such gateway, here: the direct path says so as it says it
        chosen.update(hits)
    return [r for i, r in enumerate(rows) if i in chosen]  # in the fleet's order, as collect lists them


def narrowed(doc: dict, targets: list[Target]) -> dict | None:
    """The served document as a direct `ps` with these targets would build it (rows, the
    selected instances' interrupted operations, the containers of theirs that did not answer);
    None when the targets need the direct path."""
    rows = _select(ps_rows.rows_of(doc), targets)
    if rows is None:
        return None
    interrupted = doc.get("interrupted_operations") or []
    if targets:
        names = instance_names(SimpleNamespace(name=r.container, service=r.service) for r in rows)
        interrupted = [op for op in interrupted if op.get("instance") in names]
    # what did not answer: the selected containers' only (ps_rows.document's rule)
    return ps_rows.document(rows, endpoints=doc.get("endpoints") or [], unreachable=doc.get("unreachable") or [],
                            interrupted=interrupted, source=doc.get("source") or {})


def render(doc: dict, targets: list[Target], *, json_output: bool, wide: bool, quiet: bool,
           no_headers: bool, stdout=None, stderr=None) -> ExitStatus | None:
    """Print the served document as `ps` would; None (nothing printed) when the targets need
    the direct path."""
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    mine = narrowed(doc, targets)
    if mine is None:
        return None
    ps_rows.print_plain(mine, json_output=json_output, quiet=quiet, wide=wide, no_headers=no_headers,
                        nodes=(doc.get("scope") or {}).get("swarm") is not None, stdout=stdout)
    if not json_output and not quiet:
        source_note(mine["source"], stderr)
    ps_rows.print_warnings(mine, stderr)
    return ps_rows.exit_status(mine)


def source_note(source: dict, stderr) -> None:
    """Where a served answer came from and how old it is (every command serve answers says it)."""
    age = source.get("age_s")
    note = (f"(from hermesctl serve at {source.get('socket')}, {age if age is not None else '?'} s old;"
            " --direct asks the containers)")
    stderr.write(ansi([[(printable(note), "dim")]], colour=wants_colour(stderr)))


def show(out, doc: dict, targets: list[Target], *, wide: bool, quiet: bool) -> ExitStatus | None:
    """render() with the settings of the run's Output (the typer path)."""
    stdout = out.console.file if out.console.file is not sys.stdout else None
    return render(doc, targets, json_output=out.json, wide=wide, quiet=quiet, no_headers=out.no_headers,
                  stdout=stdout)
