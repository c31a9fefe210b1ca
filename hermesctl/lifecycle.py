"""Gateway lifecycle inside one container: s6-svc through exec as hermes, waited on with
s6-svlisten (subscribe first, then act: no race), intent recorded in gateway_state.json.

What the verbs mean:
- start:   want up; record desired_state=running.
- stop:    want down; record desired_state=stopped (and hermes' planned-stop marker, so the
           gateway exits 0 and records gateway_state=stopped).
- restart: a running gateway is sent SIGTERM and comes back with a new pid; a stopped one is
           started (as `systemctl restart` does). s6-svc -r alone would do nothing to it.
"""
import time
from dataclasses import dataclass

from hermesctl.fleet import Fleet, Selection
from hermesctl.models import Slot

SCANDIR = "/run/service"
SLOTS_TOOL = "/opt/hermes/docker/hermes-slots"
S6_SVLISTEN = "/command/s6-svlisten"
# s6-svc takes one service directory: apply a flag to each of "$@" (after the flag), in one exec.
SVC_EACH = 'flag=$1; shift; rc=0; for d in "$@"; do /command/s6-svc "$flag" "$d" || rc=$?; done; exit $rc'


def slot_dir(profile: str) -> str:
    return f"{SCANDIR}/gateway-{profile}"


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


def _wait_and_act(fleet: Fleet, sel: Selection, profiles: list[str], event: str, svc_flag: str,
                  timeout: float) -> None:
    if not profiles:
        return
    dirs = [slot_dir(p) for p in profiles]
    # Subscribe to all slots first, then act on each: no state change can slip in between.
    fleet.run(sel.container, [S6_SVLISTEN, event, "-a", "-t", str(int(timeout * 1000)), *dirs, "",
                              "sh", "-c", SVC_EACH, "s6-svc-each", svc_flag, *dirs])


def _result(sel: Selection, slot: Slot | None, profile: str, want_up: bool, old_pid: int | None,
            restarted: bool) -> GatewayResult:
    base = dict(endpoint=sel.container.endpoint, container=sel.container.name, profile=profile)
    if slot is None or slot.status is None:
        return GatewayResult(**base, ok=False, state="unsupervised", message="no supervisor on the slot")
    s = slot.status
    if not want_up:
        if s.up:
            return GatewayResult(**base, ok=False, state="up", pid=s.pid, message="did not go down")
        return GatewayResult(**base, ok=True, state=slot.run_state, message="stopped")
    if not s.up:
        last = s.exit_code if s.exit_code is not None else s.signal
        why = "parked: fatal configuration (exit 78)" if slot.parked else f"did not come up (last exit {last})"
        return GatewayResult(**base, ok=False, state=slot.run_state, message=why)
    if restarted and old_pid and s.pid == old_pid:
        return GatewayResult(**base, ok=False, state="up", pid=s.pid, message="still the old process")
    if old_pid:
        message = "restarted" if restarted else "already running"
    else:
        message = "started"
    return GatewayResult(**base, ok=True, state="up", pid=s.pid, message=message)


def apply(fleet: Fleet, sel: Selection, verb: str, *, timeout: float, settle: float) -> list[GatewayResult]:
    """Run `verb` on the selected gateways of one container and report each one's outcome."""
    before = {p: sel.snapshot.slots[p] for p in sel.profiles}
    old_pids = {p: (s.status.pid if s.status and s.status.up else None) for p, s in before.items()}
    want_up = verb in ("start", "restart")
    desire = fleet.run(sel.container, [SLOTS_TOOL, "desire", "running" if want_up else "stopped",
                                       *sel.profiles])
    if not desire.ok:
        msg = desire.stderr.strip().splitlines()[-1] if desire.stderr.strip() else "desire failed"
        return [GatewayResult(sel.container.endpoint, sel.container.name, p, False, "unknown",
                              message=f"could not record desired_state: {msg}") for p in sel.profiles]
    if verb == "start":
        _wait_and_act(fleet, sel, sel.profiles, "-u", "-u", timeout)
    elif verb == "stop":
        _wait_and_act(fleet, sel, sel.profiles, "-D", "-d", timeout)
    elif verb == "restart":
        running = [p for p in sel.profiles if old_pids[p]]
        stopped = [p for p in sel.profiles if not old_pids[p]]
        # -u as well as -t: a slot whose `down` marker or earlier stop left it wanted-down would
        # otherwise be killed and not come back.
        _wait_and_act(fleet, sel, running, "-r", "-tu", timeout)
        _wait_and_act(fleet, sel, stopped, "-u", "-u", timeout)
    else:
        raise ValueError(verb)
    if want_up and settle > 0:
        time.sleep(settle)  # a gateway that dies right after starting must not count as up
    after = fleet.probe(sel.container)
    return [_result(sel, after.slots.get(p), p, want_up, old_pids[p], verb == "restart")
            for p in sel.profiles]
