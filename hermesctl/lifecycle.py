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

from hermesctl import agent
from hermesctl.contract import BUSY_EXIT, FATAL_CONFIG_EXIT, SCANDIR, SLOT_PREFIX  # noqa: F401
from hermesctl.errors import HermesctlError, describe
from hermesctl.fleet import Fleet, Selection
from hermesctl.models import Slot
from hermesctl.results import ItemResult


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
