"""hermesctl events: one line per change across the fleet, as it happens, until Ctrl-C.

Gateways (from every container's held-open `watch` stream) and containers (from Docker's events
API), on every endpoint. `--json`: JSON lines (hermesctl.event/v1), like `docker events
--format json`.
"""

from hermesctl.backends.docker.fleet import Fleet
from hermesctl.backends.docker.streams import LiveFleet
from hermesctl.core import interrupt
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.model.targets import Target
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # rich: not on the quick read path (hermesctl.cli.quick_read)
    from hermesctl.render.output import Output


def events(out: "Output", fleet: Fleet, targets: list[Target]) -> ExitStatus:
    live = LiveFleet(fleet, targets)
    live.start()
    for u in fleet.unreachable:  # what could not be watched from the start, said once
        out.warn(f"{u.container or u.endpoint}: {u.message}")
    while True:
        event = interrupt.next_item(live.events)
        if out.json:
            out.json_line(event.document())
        else:
            out.line(event.line())
