"""hermesctl ps: one row per container x gateway, from one exec of the agent's `status` per
container; `--watch` from one held-open `watch` stream per container (hermesctl.backends.docker.streams)."""
import queue
from dataclasses import asdict

from rich.live import Live

from hermesctl.backends.docker.fleet import Fleet
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.engine import journal
from hermesctl.engine.rows import GatewayRow, exit_status, live_rows, ps_answer
from hermesctl.model.targets import Target
from hermesctl.render.output import Output

from hermesctl.render.ps_rows import table_cells

__all__ = ["GatewayRow", "ps", "render_table"]


def render_table(out: Output, fleet: Fleet, rows: list[GatewayRow], *, wide: bool, live: bool = False):
    """The ps table; `live` (ps --watch, redrawn on every change): the same columns as plain lines."""
    multi = fleet.configured > 1 or out.several_endpoints
    columns, body = table_cells(rows, multi=multi, wide=wide, endpoint_column=out.endpoint_column)
    return out.text_table(columns, body) if live else out.table(columns, body)


def ps(out: Output, fleet: Fleet, targets: list[Target], *, wide: bool, quiet: bool,
       watch: bool, interval: float) -> ExitStatus:
    if watch:
        return _watch(out, fleet, targets, wide=wide, interval=interval)
    rows, interrupted = ps_answer(fleet, targets)
    if out.json:
        out.document("ps", {
            "gateways": [asdict(r) | {"target": r.target} for r in rows],
            "interrupted_operations": [journal.describe(r) for r in interrupted],
        })
    elif quiet:
        for r in rows:
            if r.profile is not None:
                out.line(r.target)
    else:
        out.print(render_table(out, fleet, rows, wide=wide))
    for r in interrupted:
        out.warn(f"interrupted: {r.what} (at step {r.step}): `{journal.RECOVER_HINT}` finishes or undoes it")
    return exit_status(rows)


def row_changes(shown: dict, rows: list[GatewayRow]) -> tuple[list[GatewayRow], dict]:
    """The rows to print as lines since `shown` (key -> row as last printed): new rows and rows
    that changed in anything but their uptime (which advances every second), then rows that are
    gone, as `removed`. Returns them and what is shown after printing them."""
    def key(r: GatewayRow):
        return (r.endpoint, r.container, r.profile)

    def facts(r: GatewayRow) -> dict:
        return asdict(r) | {"uptime_s": None}

    now = {key(r): r for r in rows}
    changed = [r for r in rows if key(r) not in shown or facts(shown[key(r)]) != facts(r)]
    gone = [GatewayRow(**(asdict(r) | {"state": "removed", "pid": None, "uptime_s": None}))
            for k, r in shown.items() if k not in now]
    return changed + gone, now


def _watch_lines(out: Output, fleet: Fleet, live, *, wide: bool, interval: float) -> ExitStatus:
    """--watch off a terminal (a file, a pipe): no screen to redraw, so the table once, then each
    change as lines, each flushed as it comes, as `kubectl get -w` does."""
    shown: dict = {}
    first = True
    while True:
        lines, shown = row_changes(shown, live_rows(live))
        if lines or first:
            table = render_table(out, fleet, lines, wide=wide, live=True)
            if not first:  # the header once, at the top
                table.lines = table.lines[0 if out.no_headers else 1:]
            out.print(table)
            first = False
        try:
            live.events.get(timeout=interval)
        except queue.Empty:
            pass
        while not live.events.empty():  # a burst of changes: one look
            live.events.get_nowait()


def _watch(out: Output, fleet: Fleet, targets: list[Target], *, wide: bool, interval: float) -> ExitStatus:
    """A live table, redrawn in place when anything changes (and every `interval` for uptimes),
    from one held-open stream per container: no exec per refresh."""
    from hermesctl.backends.docker.streams import LiveFleet
    live = LiveFleet(fleet, targets)
    live.start()
    if not out.console.is_terminal:
        return _watch_lines(out, fleet, live, wide=wide, interval=interval)
    with Live(render_table(out, fleet, live_rows(live), wide=wide, live=True), console=out.console,
              auto_refresh=False) as screen:
        while True:
            try:
                live.events.get(timeout=interval)
            except queue.Empty:
                pass
            while not live.events.empty():  # a burst of changes: one redraw
                live.events.get_nowait()
            screen.update(render_table(out, fleet, live_rows(live), wide=wide, live=True), refresh=True)
