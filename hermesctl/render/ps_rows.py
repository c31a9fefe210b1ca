"""The rows of `hermesctl ps` and how they read as a table: shared by direct `ps`, `ps --watch`,
`hermesctl serve` and `ps` answered by serve (quick_ps), so every path shows the same columns.
Stdlib only: the served path imports neither rich nor the Docker SDK."""
from dataclasses import dataclass

from hermesctl.core.exit_codes import ExitStatus
from hermesctl.render.plain_table import duration, platforms_summary, state_cell


@dataclass
class GatewayRow:
    endpoint: str
    container: str
    service: str | None
    profile: str | None
    state: str              # up/down/parked/crash-loop/unsupervised, or the container's state
    pid: int | None = None
    uptime_s: int | None = None
    wanted: str | None = None
    crash_looping: bool = False
    parked: bool = False
    exit_code: int | None = None
    deaths_recent: int = 0
    gateway_state: str | None = None
    desired_state: str | None = None
    platforms: dict | None = None
    health: str | None = None
    error: str | None = None  # the container did not answer (state timeout or error)
    orphan_pids: list[int] | None = None  # gateway processes of the profile outside its supervisor
    last_death: str | None = None  # models.Slot.last_death: "killed by signal 9 (SIGKILL)", "stopped by hermesctl"
    engine: str | None = None  # the endpoint's engine: docker, podman (hermesctl.backends.docker.podman)

    @property
    def target(self) -> str:
        return self.container if self.profile is None else f"{self.container}:{self.profile}"

    @property
    def wanted_but_not_up(self) -> bool:
        return self.profile is not None and self.state != "up" and (
            self.wanted == "up" or self.desired_state == "running")


def exit_status(rows: list[GatewayRow]) -> ExitStatus:
    if any(r.wanted_but_not_up or r.crash_looping or r.parked or r.orphan_pids for r in rows):
        return ExitStatus.NOT_RUNNING
    return ExitStatus.OK


def table_cells(rows: list[GatewayRow], *, multi: bool, wide: bool,
                endpoint_column: str = "ENDPOINT") -> tuple[list[str], list[list[object]]]:
    """The ps table's columns and cells (the state as a plain_table.Styled)."""
    compose = wide or any(r.service for r in rows)
    columns = ([endpoint_column] if multi or wide else []) + (["ENGINE"] if wide else []) + ["CONTAINER"] + (
        ["SERVICE"] if compose else []) + [
        "PROFILE", "STATE", "PID", "UPTIME", "WANTED", "GATEWAY", "DESIRED", "PLATFORMS"]
    if wide:
        columns += ["EXIT", "DEATHS/60s", "LAST DEATH", "HEALTH"]
    body = []
    for r in rows:
        container = r.container if r.health in (None, "healthy") or wide else f"{r.container} ({r.health})"
        row = ([r.endpoint] if multi or wide else []) + ([r.engine] if wide else []) + [container] + (
            [r.service] if compose else []) + [
            r.profile, state_cell(f"{r.state}: {r.error}" if r.error else r.state), r.pid, duration(r.uptime_s),
            r.wanted, r.gateway_state, r.desired_state, platforms_summary(r.platforms) or None]
        if wide:
            row += [r.exit_code, r.deaths_recent, r.last_death, r.health]
        body.append(row)
    return columns, body
