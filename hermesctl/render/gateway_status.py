"""`gateway status`'s answer, whoever found its gateways: the containers asked now
(commands/gateway.status, one probe each) or a running `hermesctl serve`'s state
(commands/gateway_served). Both hand over the same entries; the document, the table and the exit
code are made here only, so the two answers cannot drift apart. Stdlib only: the quick read path
(hermesctl.cli.quick_read) prints it without rich."""
from dataclasses import dataclass
from typing import TYPE_CHECKING

from hermesctl.core.exit_codes import ExitStatus
from hermesctl.render.plain_table import duration, state_cell

if TYPE_CHECKING:  # rich's Output or hermesctl.render.plain_output.PlainOutput
    from hermesctl.render.output import Output


@dataclass(frozen=True)
class GatewayStatus:
    endpoint: str
    container: str
    profile: str
    state: str              # models.Slot.run_state: the judgment ps makes
    pid: int | None
    uptime_s: int | None    # while up


def report(out: "Output", gateways: list[GatewayStatus]) -> ExitStatus:
    """Like `systemctl is-active`: 0 when every gateway is up, 3 otherwise."""
    rows, doc = [], []
    all_up = True
    for g in gateways:
        up = g.state == "up"
        all_up &= up
        rows.append([f"{g.container}:{g.profile}", state_cell(g.state), g.pid, duration(g.uptime_s)])
        doc.append({"endpoint": g.endpoint, "container": g.container, "profile": g.profile, "state": g.state,
                    "up": up, "pid": g.pid, "uptime_s": g.uptime_s})
    if out.json:
        out.document("gateway-status", {"gateways": doc, "all_up": all_up})
    else:
        out.print(out.table(["TARGET", "STATE", "PID", "UPTIME"], rows, endpoints=[d["endpoint"] for d in doc]))
    return ExitStatus.OK if all_up else ExitStatus.NOT_RUNNING
