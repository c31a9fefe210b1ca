"""When a freshly started container counts as serving: one gate for every backend (plain Docker,
compose, a swarm task, Podman), so that each answers the same question the same way.

Docker runs an image's HEALTHCHECK first `interval` after the start (30 s for this image; engine
20.10 has no --start-interval), so waiting for its `healthy` costs half a minute per container.
The check itself is a command (the image's: the agent's `health`), so it is run here at once, in
the new container, and counts when Docker does not contradict it: the container runs, has not
restarted, is not `unhealthy`, and Docker's own latest check of this run (if it ran one) passed.
Docker's `healthy` is a pass too; a start period never is. The image's own boot gate must agree
as well: booted, and every gateway wanted up is up and keeps its pid for `settle` seconds (the
health check only says none is stuck down, and a crash-looping one can be up at that instant).

Without a health status to come — no healthcheck configured, or an engine that never runs them
(Podman without systemd leaves `starting` forever; the caller says so, or Docker has run no
check long after the first one was due) — the boot gate alone decides. The verdict names the
gate used.

A backend calls `wait(fleet, started, wanted, timeout=..., settle=...)` with `started` a
backends.base.Started (a container ref and name on an endpoint; its `inspect()` is Docker's
inspect of it) and `fleet` answering run() and probe() for a HermesContainer on that endpoint; an engine
known to run no healthchecks passes engine_runs_healthchecks=False (the upgrade engine asks its
fleet, `engine_runs_healthchecks(endpoint)`: the endpoint's engine says, hermesctl.backends.docker.podman).
"""
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Callable

from hermesctl.backends.docker.inventory import HermesContainer
from hermesctl.core.errors import HermesctlError, describe

POLL_S = 0.5
CHECK_EVERY_S = 1.0       # our own run of the healthcheck, at most this often
DOCKER_DEFAULT_NS = 30 * 10 ** 9  # Docker's default interval and timeout
GRACE_S = 5.0             # beyond interval + timeout before "Docker runs no checks" is concluded

GATE_DOCKER = "docker healthy + boot gate"
GATE_CHECK = "healthcheck run at once + boot gate, docker agreeing"
GATE_BOOT_NO_CHECK = "boot gate (no healthcheck configured)"
GATE_BOOT_NO_ENGINE = "boot gate (the engine runs no healthchecks)"


@dataclass(frozen=True)
class Verdict:
    serving: bool
    gate: str
    detail: str = ""   # why not, when not serving

    def __bool__(self) -> bool:
        return self.serving


def healthcheck_argv(inspect: dict) -> list[str] | None:
    """The configured healthcheck as an argv, or None when there is none (absent, NONE)."""
    test = ((inspect.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD-SHELL" and len(test) > 1:
        return ["/bin/sh", "-c", test[1]]
    if test[0] == "CMD" and len(test) > 1:
        return list(test[1:])
    return None


def _seconds(inspect: dict, key: str) -> float:
    value = ((inspect.get("Config") or {}).get("Healthcheck") or {}).get(key) or DOCKER_DEFAULT_NS
    return value / 1e9


def _last_line(text: str) -> str:
    lines = [line for line in (text or "").strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def _instant(text) -> datetime | None:
    """A Docker timestamp (RFC 3339, nanoseconds) as a datetime; None when it is not one."""
    if not isinstance(text, str):
        return None
    match = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)", text.strip())
    if not match:
        return None
    fraction = (match.group(2) or "0")[:6].ljust(6, "0")
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    try:
        return datetime.fromisoformat(f"{match.group(1)}.{fraction}{zone}")
    except ValueError:
        return None


def this_runs_checks(state: dict) -> list[dict]:
    """Docker's health log of this run of the container: a restart (a rollback starts the old
    container again) keeps the log of the run before, whose verdicts are not about this one.
    Entries whose time cannot be read are kept (they may be this run's)."""
    log = (state.get("Health") or {}).get("Log") or []
    started = _instant(state.get("StartedAt"))
    if started is None:
        return list(log)
    return [e for e in log if (_instant(e.get("Start")) or started) >= started]


def _contradiction(state: dict) -> str | None:
    """Docker's own verdict against serving: its latest check failed (also in the start period)."""
    log = this_runs_checks(state)
    if log and log[-1].get("ExitCode") not in (0, None):
        return f"docker's latest check failed: {_last_line(log[-1].get('Output', '')) or 'exit ' + str(log[-1].get('ExitCode'))}"
    return None


def wait(fleet, started, wanted: list[str], *, timeout: float, settle: float,
         engine_runs_healthchecks: bool = True, should_stop: Callable[[], bool] = lambda: False,
         clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> Verdict:
    """Until `started` (a backends.base.Started) serves, fails, or `timeout` passes. Serving is
    both verdicts at once: the health one (Docker's `healthy`, or the check run here with Docker
    not contradicting it; none when no status will come) and the agent's boot gate."""
    target = HermesContainer(endpoint=started.endpoint.name, id=started.ref, name=started.name,
                             state="running", status="")
    begun = clock()
    deadline = begun + timeout
    # Named before the first look: a container that exits at once on an engine that runs no
    # healthchecks (Podman without systemd) failed the boot gate, not Docker's.
    gate, last = GATE_DOCKER if engine_runs_healthchecks else GATE_BOOT_NO_ENGINE, "not started yet"
    steady_since, steady_pids, checked_at, check_passed = None, None, None, False
    while True:
        if should_stop():
            raise KeyboardInterrupt
        inspect = started.inspect()
        state = inspect["State"]
        if state["Status"] in ("exited", "dead"):
            return Verdict(False, gate, f"exited with code {state.get('ExitCode')}")
        if state["Status"] == "restarting" or inspect.get("RestartCount", 0) > 0:
            return Verdict(False, gate, f"keeps restarting (restarted {inspect.get('RestartCount', 0)} times)")
        health = (state.get("Health") or {}).get("Status")
        if health == "unhealthy":
            log = (state["Health"].get("Log") or [{}])[-1].get("Output", "")
            return Verdict(False, gate, f"unhealthy: {_last_line(log) or 'healthcheck failed'}")
        argv = healthcheck_argv(inspect)
        if argv is not None and engine_runs_healthchecks and not this_runs_checks(state) \
                and clock() - begun > _seconds(inspect, "Interval") + _seconds(inspect, "Timeout") + GRACE_S:
            # Docker would have run its first check by now: it runs none (no status will come).
            engine_runs_healthchecks = False
        # The health verdict.
        if argv is None or not engine_runs_healthchecks:
            gate = GATE_BOOT_NO_CHECK if argv is None else GATE_BOOT_NO_ENGINE
            health_ok = True
        elif health == "healthy":
            gate, health_ok = GATE_DOCKER, True
        else:
            gate, health_ok = GATE_CHECK, False
            against = _contradiction(state)
            if against:
                check_passed, last = False, against
            elif check_passed:
                health_ok = True
            elif state["Running"] and (checked_at is None or clock() - checked_at >= CHECK_EVERY_S):
                checked_at = clock()
                ran = _run_check(fleet, target, argv, min(_seconds(inspect, "Timeout"), max(1.0, deadline - clock())))
                check_passed = health_ok = ran is None
                last = ran or last
        # The boot gate: booted, every wanted gateway up with the same pid for `settle` seconds.
        boot_ok = False
        if health_ok and state["Running"]:
            try:
                snap = fleet.probe(target)
            except HermesctlError as exc:
                snap, last = None, describe(exc)
            if snap is not None and snap.booted:
                down = [p for p in wanted if not (p in snap.slots and snap.slots[p].status
                                                  and snap.slots[p].status.up)]
                if down:
                    steady_since, last = None, f"gateways not up: {', '.join(down)}"
                else:
                    pids = {p: snap.slots[p].status.pid for p in wanted}
                    if steady_since is not None and pids == steady_pids:
                        boot_ok = clock() - steady_since >= settle
                    else:
                        steady_since, steady_pids = clock(), pids
                    last = "settling"
            elif snap is not None:
                last = "booting"
        if health_ok and boot_ok:
            if gate == GATE_CHECK:
                # Docker, asked once more, must still not say otherwise.
                again = started.inspect()
                if not again["State"]["Running"] or again.get("RestartCount", 0) \
                        or (again["State"].get("Health") or {}).get("Status") == "unhealthy" \
                        or _contradiction(again["State"]):
                    check_passed, last = False, "docker disagrees with the check"
                    continue
            return Verdict(True, gate)
        if clock() > deadline:
            return Verdict(False, gate, f"not serving after {timeout:g}s ({last})")
        sleep(POLL_S)


def _run_check(fleet, target: HermesContainer, argv: list[str], timeout: float) -> str | None:
    """The healthcheck, once, as hermes (the image's script drops to hermes itself when Docker
    runs it as root): None when it passes, else why not (its last output line, bounded)."""
    try:
        res = fleet.run(target, argv, timeout=timeout)
    except HermesctlError as exc:
        return f"healthcheck: {describe(exc)}"
    if res.ok:
        return None
    return f"healthcheck exit {res.exit_code}: {_last_line(res.stdout) or _last_line(res.stderr)}"
