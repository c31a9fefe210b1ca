"""hermesctl gateway start|stop|restart|status|register|unregister.

Imports neither rich nor the Docker SDK: `gateway status` runs on the quick read path too
(hermesctl.quick_read), with the same code."""
from dataclasses import asdict
from typing import TYPE_CHECKING

from hermesctl import agent
from hermesctl.errors import HermesctlError, NotFoundError, UsageError, describe
from hermesctl.exit_codes import ExitStatus
from hermesctl.fleet import Fleet, Selection
from hermesctl.lifecycle import GatewayResult, apply, run_locked
from hermesctl.names import normalize_profile
from hermesctl.plain_table import duration, state_cell
from hermesctl.parallel import fan_out
from hermesctl.results import exit_status
from hermesctl.targets import Target, is_glob

if TYPE_CHECKING:
    from hermesctl.output import Output


def _failure(sel: Selection, exc: BaseException) -> list[GatewayResult]:
    return [GatewayResult(sel.container.endpoint, sel.container.name, p, False, "unknown", message=describe(exc))
            for p in sel.profiles]


def render(out: "Output", verb: str, results: list[GatewayResult]) -> ExitStatus:
    if out.json:
        out.document(f"gateway-{verb}", {"action": verb,
                                 "results": [asdict(r) | {"target": r.target} for r in results]})
    else:
        rows = [[r.target, "ok" if r.ok else "FAILED", state_cell(r.state), r.pid, r.message]
                for r in results]
        out.print(out.table(["TARGET", "RESULT", "STATE", "PID", "DETAIL"], rows,
                            endpoints=[r.endpoint for r in results]))
    return exit_status([r.as_result() for r in results])


def _up(sel: Selection, profile: str) -> bool:
    slot = sel.snapshot.slots.get(profile)
    return bool(slot and slot.status and slot.status.up)


def lifecycle(out: "Output", fleet: Fleet, verb: str, targets: list[Target], *, timeout: float,
              settle: float, rolling: bool = False, running_only: bool = False,
              wait_ready: bool = False) -> ExitStatus:
    """`running_only` (restart): only the gateways up when selected are restarted, as `systemctl
    try-restart` and `kubectl rollout restart` do; the others are reported as skipped, untouched."""
    selections = fleet.select(targets, unslotted=verb in ("start", "restart"))

    def one(sel: Selection) -> list[GatewayResult]:
        skipped = []
        if running_only:
            skipped = [GatewayResult(sel.container.endpoint, sel.container.name, p, True,
                                     sel.snapshot.slots[p].run_state if p in sel.snapshot.slots else "no slot",
                                     message="skipped: not running (--running-only)")
                       for p in sel.profiles if not _up(sel, p)]
            sel = Selection(sel.container, sel.snapshot, [p for p in sel.profiles if _up(sel, p)])
            if not sel.profiles:
                return skipped
        try:
            done = apply(fleet, sel, verb, timeout=timeout, settle=settle, wait_ready=wait_ready)
        except Exception as exc:  # noqa: BLE001 - reported as this container's result
            done = _failure(sel, exc)
        return sorted(done + skipped, key=lambda r: r.profile)

    def hint(results: list[GatewayResult]) -> None:
        # Starting what was stopped is restart's documented meaning (as systemctl's), and on a
        # fleet-wide glob it may be a surprise: say so, and how to leave them stopped.
        started = [r for r in results if r.ok and r.message.startswith("started (")]
        if verb == "restart" and started and any(is_glob(t.container) or t.profile is None or is_glob(t.profile)
                                                 for t in targets):
            out.warn(f"{len(started)} gateway(s) were stopped and are now started; "
                     "--running-only restarts only the running ones")

    if not rolling:
        results = [r for o in fan_out(one, selections) for r in o.value]
        hint(results)
        return render(out, verb, results)
    results: list[GatewayResult] = []
    for i, sel in enumerate(selections):  # one container at a time, in name order
        batch = one(sel)
        results.extend(batch)
        if not all(r.ok for r in batch):
            skipped = [s.container.name for s in selections[i + 1:]]
            if skipped:
                out.warn(f"rolling {verb} stopped at {sel.container.name}; not touched: {', '.join(skipped)}")
            break
    hint(results)
    return render(out, verb, results)


def status(out: "Output", fleet: Fleet, targets: list[Target]) -> ExitStatus:
    """Like `systemctl is-active`: 0 when every targeted gateway is up, 3 otherwise."""
    selections = fleet.select(targets)
    rows, doc = [], []
    all_up = True
    for sel in selections:
        for p in sel.profiles:
            slot = sel.snapshot.slots[p]
            up = slot.run_state == "up"  # the judgment ps makes (models.Slot.run_state)
            all_up &= up
            pid = slot.status.pid if slot.status else None
            uptime = slot.status.seconds if slot.status and slot.status.up else None
            rows.append([f"{sel.container.name}:{p}", state_cell(slot.run_state), pid, duration(uptime)])
            doc.append({"endpoint": sel.container.endpoint, "container": sel.container.name,
                        "profile": p, "state": slot.run_state, "up": up, "pid": pid, "uptime_s": uptime})
    if out.json:
        out.document("gateway-status", {"gateways": doc, "all_up": all_up})
    else:
        out.print(out.table(["TARGET", "STATE", "PID", "UPTIME"], rows, endpoints=[d["endpoint"] for d in doc]))
    return ExitStatus.OK if all_up else ExitStatus.NOT_RUNNING


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
