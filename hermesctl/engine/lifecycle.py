"""Gateway lifecycle inside one container: one exec of `hermes-slots operate` as hermes, which
takes the container's operation lock (one operation at a time per container), records intent
in gateway_state.json, runs s6-svc waited on with s6-svlisten (subscribe first, then act: no
race), records the operation (so its deaths are not counted as a crash loop), and reports what
each gateway was once the lock was held and what it is after the settle time.

What the verbs mean:
- start:   want up; record desired_state=running.
- stop:    want down; record desired_state=stopped (and hermes' planned-stop marker, so the
           gateway exits 0 and records gateway_state=stopped).
- restart: a running gateway is stopped as `stop` does (hermes records a clean stop, exit 0)
           and brought up with a new pid; a stopped one is started (as `systemctl restart`
           does). s6-svc -r alone would do nothing to it.
A start judges what follows: a gateway that dies or parks before the settle time ends (or, with
wait_ready, before hermes says its start went well) is a failed start.
"""
from dataclasses import dataclass
from typing import Callable

from hermesctl.agent import client as agent
from hermesctl.agent.contract import BUSY_EXIT, FATAL_CONFIG_EXIT, SCANDIR, SLOT_PREFIX  # noqa: F401
from hermesctl.backends.docker.fleet import Fleet, Selection
from hermesctl.backends.docker.inventory import HermesContainer
from hermesctl.core.errors import HermesctlError, describe
from hermesctl.core.parallel import fan_out
from hermesctl.model.names import is_profile_name
from hermesctl.model.results import ItemResult
from hermesctl.model.slots import Slot
from hermesctl.model.targets import Target, is_glob


def slot_dir(profile: str) -> str:
    return f"{SCANDIR}/{SLOT_PREFIX}{profile}"


@dataclass
class GatewayResult:
    endpoint: str
    container: str
    profile: str
    ok: bool
    state: str
    pid: int | None = None
    message: str = ""

    @property
    def target(self) -> str:
        return f"{self.container}:{self.profile}"

    def as_result(self) -> ItemResult:
        return ItemResult(f"{self.endpoint}/{self.target}", self.ok, "ok" if self.ok else "failed", self.message)


LOCK_WAIT_MIN_S = 30.0


def run_locked(fleet: Fleet, container, argv: list[str], **kwargs):
    """argv under the container's operation lock (the agent's `locked`), for profile and
    settings steps; the exec's deadline covers the wait for the lock. The result is the
    command's own (a lock not free in time: exit BUSY_EXIT and an error document)."""
    kwargs.setdefault("timeout", fleet.exec_timeout + LOCK_WAIT_MIN_S)
    return fleet.run(container, agent.argv("locked", "--wait", f"{LOCK_WAIT_MIN_S:g}", "--", *argv), **kwargs)


def lock_wait(timeout: float, settle: float) -> float:
    """How long a command waits for another one on the same container: at least one whole
    operation of its size (both waits of a restart, the wait for hermes' verdict, the settle)."""
    return max(LOCK_WAIT_MIN_S, 3 * timeout + settle + 5)


def _state(status: dict | None) -> str:
    if status is None:
        return "unsupervised"
    if status["up"]:
        return "up"
    if not status["wanted_up"] and status["exit_code"] == FATAL_CONFIG_EXIT:
        return "parked"
    return "down"


def _judge(base: dict, verb: str, seen: Slot | None, report: dict, waited: float) -> GatewayResult:
    """The outcome of one gateway, from what the container reported under its lock: `before` is
    what this command found once it held the lock (another command may have acted meanwhile),
    `acted` what it was right after acting, `after` what it left after the settle time, and
    `startup` hermes' own verdict on the start when it was waited for."""
    before, acted, after = report.get("before"), report.get("acted"), report.get("after")
    if after is None:
        return GatewayResult(**base, ok=False, state="unsupervised", message="no supervisor on the slot")
    note = f" (waited {waited:.1f}s for another operation)" if waited >= 0.5 else ""
    seen_up = bool(seen and seen.status and seen.status.up)
    was_up = bool(before and before["up"])
    changed_meanwhile = seen is not None and seen_up != was_up
    state, pid = _state(after), after["pid"]
    if verb == "stop":
        if after["up"]:
            return GatewayResult(**base, ok=False, state=state, pid=pid, message="did not go down" + note)
        if was_up:
            return GatewayResult(**base, ok=True, state=state, message="stopped" + note)
        found = "already stopped by another operation" if changed_meanwhile else "already stopped"
        return GatewayResult(**base, ok=True, state=state, message=found + note)
    if not after["up"]:
        last = after["exit_code"] if after["exit_code"] is not None else after["signal"]
        why = ("parked: fatal configuration (exit 78)" if state == "parked"
               else f"did not come up (last exit {last})")
        return GatewayResult(**base, ok=False, state=state, message=why + note)
    came_up = acted["pid"] if acted and acted.get("up") else None
    if came_up and pid != came_up:  # up again, but not the process this command started
        return GatewayResult(**base, ok=False, state=state, pid=pid,
                             message=f"died after it started (pid {came_up}, now {pid}: s6 restarted it)" + note)
    startup = report.get("startup")
    if startup in ("failed", "died"):
        return GatewayResult(**base, ok=False, state=state, pid=pid,
                             message=f"hermes reported its start failed{' (startup_failed)' if startup == 'failed' else ''}" + note)
    old_pid = before["pid"] if was_up else None
    if verb == "restart" and old_pid and pid == old_pid:
        return GatewayResult(**base, ok=False, state=state, pid=pid, message="still the old process" + note)
    if verb == "restart" and old_pid:
        message = "restarted"
    elif old_pid:
        message = "already running"
    elif verb == "restart" and changed_meanwhile:
        message = "started (had been stopped by another operation)"
    elif verb == "restart" and before and not before["wanted_up"]:
        message = "started (was stopped)"
    elif verb == "restart" and before:
        message = "started (was down: it had not stayed up)"
    else:
        message = "started"
    if startup == "unconfirmed":
        message += "; hermes had not confirmed its start yet"
    return GatewayResult(**base, ok=True, state=state, pid=pid, message=message + note)


def apply(fleet: Fleet, sel: Selection, verb: str, *, timeout: float, settle: float,
          wait_ready: bool = False) -> list[GatewayResult]:
    """Run `verb` on the selected gateways of one container, under the container's operation
    lock (one exec: hermes-slots operate), and report each one's outcome. `wait_ready`: a start
    also waits (up to `timeout`) for hermes' own verdict on it."""
    if verb not in ("start", "stop", "restart"):
        raise ValueError(verb)
    settle = settle if verb != "stop" else 0
    wait = lock_wait(timeout, settle)
    argv = agent.argv("operate", verb, *sel.profiles, "--timeout", f"{timeout:g}",
                      "--settle", f"{settle:g}", "--lock-wait", f"{wait:g}", *(["--wait-ready"] if wait_ready else []))
    # The exec's deadline covers the lock wait, both s6-svlisten waits of a restart and the
    # wait for hermes' verdict.
    deadline = max(fleet.exec_timeout, wait + 3 * timeout + settle + 10)
    result = fleet.run(sel.container, argv, timeout=deadline)
    bases = {p: dict(endpoint=sel.container.endpoint, container=sel.container.name, profile=p)
             for p in sel.profiles}
    try:
        report = agent.answer(result, where=sel.container.name)
    except HermesctlError as exc:
        why = describe(exc)
        if result.exit_code == BUSY_EXIT:
            why = f"not done: {why}"
        return [GatewayResult(**bases[p], ok=False, state="unknown", message=why) for p in sel.profiles]
    waited = float(report.get("waited_s") or 0)
    registered = report.get("registered") if isinstance(report.get("registered"), list) else []
    results = [_judge(bases[p], verb, sel.snapshot.slots.get(p), report["gateways"].get(p, {}), waited)
               for p in sel.profiles]
    for r in results:
        if r.profile in registered:  # a profile made since the boot: its slot is new
            r.message = f"slot registered; {r.message}"
    return results


def _failure(sel: Selection, exc: BaseException) -> list[GatewayResult]:
    return [GatewayResult(sel.container.endpoint, sel.container.name, p, False, "unknown", message=describe(exc))
            for p in sel.profiles]


def _up(sel: Selection, profile: str) -> bool:
    slot = sel.snapshot.slots.get(profile)
    return bool(slot and slot.status and slot.status.up)


def operate_many(fleet: Fleet, verb: str, targets: list[Target], *, timeout: float, settle: float,
                 warn: Callable[[str], None], rolling: bool = False, running_only: bool = False,
                 wait_ready: bool = False) -> list[GatewayResult]:
    """One verb on every selected gateway, containers side by side (`rolling`: one at a time, in
    name order, stopping at the first failure). `running_only` (restart): only the gateways up when selected are restarted, as `systemctl
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
            warn(f"{len(started)} gateway(s) were stopped and are now started; "
                     "--running-only restarts only the running ones")

    if not rolling:
        results = [r for o in fan_out(one, selections) for r in o.value]
        hint(results)
        return results
    results: list[GatewayResult] = []
    for i, sel in enumerate(selections):  # one container at a time, in name order
        batch = one(sel)
        results.extend(batch)
        if not all(r.ok for r in batch):
            skipped = [s.container.name for s in selections[i + 1:]]
            if skipped:
                warn(f"rolling {verb} stopped at {sel.container.name}; not touched: {', '.join(skipped)}")
            break
    hint(results)
    return results


def list_profiles(fleet: Fleet, container: HermesContainer) -> list[dict]:
    """Profile directories (name, has_soul, registered, readable), from the agent's `profiles`;
    a directory whose name is not a profile name is none (`doctor` reports it)."""
    return [p for p in fleet.ask(container, "profiles")["profiles"]
            if isinstance(p, dict) and is_profile_name(p.get("name"))]
