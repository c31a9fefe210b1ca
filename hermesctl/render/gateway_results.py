"""The table or `hermesctl.gateway-<verb>/v1` document of gateway lifecycle results, and their exit
code: for `gateway start|stop|restart|register|unregister`, `profile create --start` and `apply`."""
from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

from hermesctl.core.exit_codes import ExitStatus
from hermesctl.model.results import exit_status
from hermesctl.render.plain_table import state_cell

if TYPE_CHECKING:  # results are drawn, never made, here; rich is not imported on the quick read path
    from hermesctl.engine.lifecycle import GatewayResult
    from hermesctl.render.output import Output


def render(out: Output, verb: str, results: list[GatewayResult]) -> ExitStatus:
    if out.json:
        out.document(f"gateway-{verb}", {"action": verb,
                                 "results": [asdict(r) | {"target": r.target} for r in results]})
    else:
        rows = [[r.target, "ok" if r.ok else "FAILED", state_cell(r.state), r.pid, r.message]
                for r in results]
        out.print(out.table(["TARGET", "RESULT", "STATE", "PID", "DETAIL"], rows,
                            endpoints=[r.endpoint for r in results]))
    return exit_status([r.as_result() for r in results])
