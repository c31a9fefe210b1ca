"""hermesctl gateway start|stop|restart|status|register|unregister.

Imports neither rich nor the Docker SDK: `gateway status` runs on the quick read path too
(hermesctl.cli.quick_read), with the same code."""
from typing import TYPE_CHECKING

from hermesctl.agent import client as agent
from hermesctl.backends.docker.fleet import Fleet
from hermesctl.core.errors import HermesctlError, NotFoundError, UsageError, describe
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.core.parallel import fan_out
from hermesctl.engine.lifecycle import GatewayResult, operate_many, run_locked
from hermesctl.model.names import normalize_profile
from hermesctl.model.targets import Target, is_glob
from hermesctl.render.gateway_results import render
from hermesctl.render.gateway_status import GatewayStatus, report

if TYPE_CHECKING:
    from hermesctl.render.output import Output


def lifecycle(out: "Output", fleet: Fleet, verb: str, targets: list[Target], *, timeout: float,
              settle: float, rolling: bool = False, running_only: bool = False,
              wait_ready: bool = False) -> ExitStatus:
    results = operate_many(fleet, verb, targets, timeout=timeout, settle=settle, warn=out.warn,
                           rolling=rolling, running_only=running_only, wait_ready=wait_ready)
    return render(out, verb, results)


def status(out: "Output", fleet: Fleet, targets: list[Target]) -> ExitStatus:
    """Each selected gateway as its container answers now (render.gateway_status reports it)."""
    gateways = []
    for sel in fleet.select(targets):
        for p in sel.profiles:
            slot = sel.snapshot.slots[p]
            s = slot.status
            gateways.append(GatewayStatus(sel.container.endpoint, sel.container.name, p, slot.run_state,
                                          s.pid if s else None, s.seconds if s and s.up else None))
    return report(out, gateways)


def _explicit(fleet: Fleet, targets: list[Target]):
    """register/unregister take exact CONTAINER:PROFILE targets (a slot may not exist yet)."""
    pairs = []
    for t in targets:
        if t.profile is None or is_glob(t.profile):
            raise UsageError(f"{t}: register/unregister need CONTAINER:PROFILE with an exact profile")
        profile = normalize_profile(t.profile)
        for container, _ in fleet.match([Target(t.container, None, t.endpoint)]):
            pairs.append((container, profile))
    return pairs


def registration(out: "Output", fleet: Fleet, verb: str, targets: list[Target], *, up: bool) -> ExitStatus:
    pairs = _explicit(fleet, targets)

    def one(pair) -> GatewayResult:
        container, profile = pair
        argv = [verb, profile] + (["--up"] if up and verb == "register" else [])
        result = run_locked(fleet, container, agent.argv(*argv))
        if not result.ok:
            try:
                agent.answer(result, where=container.name)
                detail = f"exit {result.exit_code}"
            except NotFoundError:
                raise
            except HermesctlError as exc:
                detail = describe(exc)
            return GatewayResult(container.endpoint, container.name, profile, False, "unknown", message=detail)
        state = ("up" if up else "down") if verb == "register" else "removed"
        return GatewayResult(container.endpoint, container.name, profile, True, state, message=f"{verb}ed")

    results = []
    for o in fan_out(one, pairs):
        (container, profile), res = o.item, o.value
        if isinstance(o.error, NotFoundError) and len(pairs) == 1:
            raise o.error
        if not o.ok:
            res = GatewayResult(container.endpoint, container.name, profile, False, "unknown",
                                message=describe(o.error))
        results.append(res)
    return render(out, verb, results)
