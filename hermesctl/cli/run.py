"""One invocation's context, shared by the full CLI (hermesctl.cli.app, typer) and the quick read
path (hermesctl.cli.quick_read, before typer, rich or the Docker SDK are imported): the output, the
endpoint options, a lazily connected fleet, and how a command ends (finish). Stdlib only."""
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Optional

from hermesctl.config.settings import DEFAULT_EXEC_TIMEOUT
from hermesctl.core.errors import UsageError
from hermesctl.core.exit_codes import ExitStatus

if TYPE_CHECKING:
    from hermesctl.backends.docker.fleet import Fleet
    from hermesctl.config.compose import Scope
    from hermesctl.render.output import Output


def valid_timeout(seconds: float) -> float:
    if not 0 < seconds <= 86400:
        raise UsageError(f"--timeout must be between 0 and 86400 seconds, not {seconds:g}")
    return seconds


@dataclass
class Run:
    """Per-invocation context: output settings and a lazily connected fleet. `local`: the
    endpoints are local sockets spoken to with the stdlib client (hermesctl.backends.docker.unix_api),
    as the quick paths do; otherwise through the Docker SDK."""
    out: "Output"
    hosts: list[str] = field(default_factory=list)
    contexts: list[str] = field(default_factory=list)
    project: Optional[str] = None
    fleet_file: Optional[str] = None
    exec_timeout: float = DEFAULT_EXEC_TIMEOUT
    swarm: Optional[str] = None
    engine: Optional[str] = None  # --engine: docker, podman; None: each endpoint's answer says
    local: Optional[list] = None  # the endpoints' hermesctl.config.endpoints.Resolved, when local
    _fleet: Optional["Fleet"] = None

    def options(self, json_output: bool = False, timeout: Optional[float] = None,
                no_headers: bool = False) -> "Run":
        """A command's own --json, --timeout, --no-headers (after the subcommand) count too."""
        self.out.json = self.out.json or json_output
        self.out.no_headers = self.out.no_headers or no_headers
        if timeout is not None:
            self.exec_timeout = valid_timeout(timeout)
        return self

    def resolved(self) -> "Scope":
        """What this run asks about (compose.resolve_scope: one rule for every path)."""
        from hermesctl.config import compose
        return compose.resolve_scope(hosts=self.hosts, contexts=self.contexts, project=self.project,
                                     fleet_file=self.fleet_file, swarm=self.swarm, engine=self.engine)

    def fleet(self) -> "Fleet":
        if self._fleet is None:
            scope = self.resolved()
            fleet = self._build(scope)
            self._fleet = fleet
            if self.swarm:
                self.out.several_endpoints, self.out.endpoint_column = True, "NODE"
            else:
                self.out.several_endpoints = fleet.configured > 1
            self.out.unreachable = lambda: fleet.unreachable
            if not fleet.containers():
                self.out.warn(fleet.empty_reason(scope.here, project_given=bool(self.project)))
        self._fleet.exec_timeout = self.exec_timeout
        return self._fleet

    def _build(self, scope: "Scope") -> "Fleet":
        if self.swarm:
            from hermesctl.backends.swarm.backend import build_swarm_fleet
            fleet = build_swarm_fleet(self.swarm, stack=self.project, fleet_file=self.fleet_file,
                                      timeout=self.exec_timeout)
            fleet.exec_timeout = self.exec_timeout
            return fleet
        if self.local is not None:
            fleet = local_fleet(self.local, project=scope.named_project, timeout=self.exec_timeout,
                                engine=scope.engine)
        else:
            from hermesctl.backends.docker.backend import build_fleet
            fleet = build_fleet(self.hosts, self.contexts, project=scope.named_project, fleet_file=self.fleet_file,
                                timeout=self.exec_timeout, engine=scope.engine)
        scope.narrow(fleet)
        fleet.exec_timeout = self.exec_timeout
        return fleet

    def new_fleet(self) -> "Fleet":
        """A fresh fleet over the same endpoints (for threads that must not share one)."""
        return self._build(self.resolved())

    def scope(self) -> dict:
        """The scope as a comparable value: a running `hermesctl serve` answers for the same."""
        return self.resolved().key()


def local_fleet(specs: list, *, project: Optional[str], timeout: float, engine: Optional[str] = None) -> "Fleet":
    """build_fleet's fleet over local sockets, connected with hermesctl.backends.docker.unix_api:
    the same endpoints, names and failures (an endpoint that does not answer is unreachable; none
    answering raises its error; --engine naming the other engine than an endpoint's is refused).
    The quick paths build their fleets here (hermesctl.cli.quick_direct, Run with `local`)."""
    from hermesctl.backends.docker import unix_api
    from hermesctl.backends.docker.fleet import Fleet, Unreachable
    from hermesctl.core.errors import describe
    from hermesctl.core.parallel import fan_out
    unique = list({spec.url: spec for spec in specs}.values())
    connected = fan_out(lambda spec: unix_api.connect(spec, timeout=timeout, engine=engine), unique)
    for o in connected:
        if not o.ok and isinstance(o.error, UsageError):
            raise o.error  # --engine names the other engine: refused as the full CLI refuses it
    endpoints = [o.value for o in connected if o.ok]
    if not endpoints:
        raise next(o.error for o in connected)
    fleet = Fleet(endpoints=endpoints, project=project, configured=len(unique), exec_timeout=timeout)
    fleet.unreachable.extend(Unreachable(o.item.name, describe(o.error)) for o in connected if not o.ok)
    return fleet


def finish(run: Optional[Run], status: int) -> int:
    """A command's exit status. Endpoints and containers that did not answer are reported here,
    once, for every command; an answer that lacks them exits PARTIAL unless something failed
    outright (1) or worse: "not running" (3) cannot be claimed about what was not seen."""
    fleet = run._fleet if run else None
    if fleet and fleet.unreachable:
        for u in fleet.unreachable:
            run.out.warn(u.warning())
    if status in (ExitStatus.OK, ExitStatus.NOT_RUNNING):  # exec's own exit codes pass through
        from hermesctl.model.results import exit_status
        status = exit_status([], fleet.unreachable if fleet else [], base=ExitStatus(status))
    return int(status)
