"""hermesctl ps: one row per container x gateway, from one exec of the agent's `status` per
container; `--watch` from one held-open `watch` stream per container (hermesctl.streams)."""
import queue
from dataclasses import asdict

from rich.live import Live

from hermesctl.engine import journal
from hermesctl.engine.rows import GatewayRow, exit_status, live_rows, ps_answer
from hermesctl.exit_codes import ExitStatus
from hermesctl.fleet import Fleet
from hermesctl.output import Output
from hermesctl.targets import Target

from hermesctl.ps_rows import table_cells

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


def _watch(out: Output, fleet: Fleet, targets: list[Target], *, wide: bool, interval: float) -> ExitStatus:
    """A live table, redrawn in place when anything changes (and every `interval` for uptimes),
    from one held-open stream per container: no exec per refresh."""
    from hermesctl.streams import LiveFleet
    live = LiveFleet(fleet, targets)
    live.start()
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
