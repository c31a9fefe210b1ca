# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""One operation at a time per container, and a record of the operator's own actions.

The lock is an flock on $HERMES_HOME/.hermesctl/lock (the volume is hermes' own; a lock held by
a process that dies is released by the kernel). A second hermesctl command waits for it, up to a
limit, then does its work and reports what it found then, not what it saw before waiting.

Operator records ($HERMES_HOME/.hermesctl/operations/<profile>, one `FROM UNTIL ACTION` line
per operation, Unix seconds) let `hermesctl ps` leave the deaths a start, stop or restart caused
out of its crash-loop count. They are hermes-writable, so readers treat them as hints for
display only and parse them strictly.
"""
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from .contract import BUSY_EXIT, CONTROL_DIR, OPERATIONS_DIR, SCHEMA
from .names import require_valid_profile
from .paths import hermes_home, profile_dir, s6, slot_dir
from .state import read_state, write_desired_state, write_planned_stop_marker

LOCK_HELD_ENV = "HERMES_SLOTS_LOCK_HELD"  # set for a command run under `hermes-slots locked`
KEEP_RECORDS = 20
RECORD_MARGIN_S = 1.0                     # a death this soon after the operation is still its own
SVSTAT_FIELDS = "up,wantedup,pid,exitcode,signal,updownfor"


class Busy(Exception):
    """Another operation held the container's lock for longer than we could wait."""


def control_dir() -> Path:
    return hermes_home() / CONTROL_DIR


@contextmanager
def container_lock(wait_s: float):
    """Hold the container's operation lock; yields the seconds spent waiting for it."""
    if os.environ.get(LOCK_HELD_ENV) == "1":  # our parent (`hermes-slots locked`) holds it
        yield 0.0
        return
    control_dir().mkdir(mode=0o700, exist_ok=True)
    fd = os.open(control_dir() / "lock", os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
    started = time.monotonic()
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() - started >= wait_s:
                    raise Busy(f"another operation held the container's lock for {wait_s:g}s") from None
                time.sleep(0.05)
        yield time.monotonic() - started
    finally:
        os.close(fd)  # releases the lock


def run_locked(argv: list[str], wait_s: float) -> int:
    """Run argv (no shell) while holding the lock; its exit code is ours."""
    with container_lock(wait_s):
        return subprocess.run(argv, env={**os.environ, LOCK_HELD_ENV: "1"}).returncode


def record_operation(profile: str, action: str, started: float, ended: float) -> None:
    """Record `FROM UNTIL ACTION` (read, trim to the last records, atomic rename). A record with
    the same FROM is replaced: an operation is recorded before it acts, with the longest it may
    take, and again with its real end once done."""
    directory = control_dir() / OPERATIONS_DIR
    directory.mkdir(parents=True, mode=0o700, exist_ok=True)
    path = directory / profile
    start = f"{started:.3f}"
    try:
        old = [line for line in path.read_text().splitlines()
               if line.strip() and line.split()[0] != start][-(KEEP_RECORDS - 1):]
    except (OSError, UnicodeDecodeError):
        old = []
    lines = old + [f"{start} {ended + RECORD_MARGIN_S:.3f} {action}"]
    tmp = path.with_name(f".{profile}.{os.getpid()}.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, path)


def slot_status(profile: str) -> dict | None:
    """s6-svstat of the slot as a dict, or None when no supervisor answers."""
    result = subprocess.run([s6("s6-svstat"), "-o", SVSTAT_FIELDS, str(slot_dir(profile))],
                            capture_output=True, text=True)
    parts = result.stdout.split()
    if result.returncode != 0 or len(parts) != 6:
        return None
    up, wanted, pid, code, signal, seconds = parts
    return {"up": up == "true", "wanted_up": wanted == "true", "pid": int(pid) if int(pid) > 0 else None,
            "exit_code": int(code) if int(code) >= 0 else None,
            "signal": None if signal == "NA" else signal, "seconds": int(seconds)}


def _listen_and_act(profiles: list[str], event: str, flag: str, timeout_s: float) -> int:
    """Subscribe to the slots first, then act on each (s6-svlisten): no change slips between."""
    if not profiles:
        return 0
    dirs = [str(slot_dir(p)) for p in profiles]
    argv = [s6("s6-svlisten"), event, "-a", "-t", str(int(timeout_s * 1000)), *dirs, "",
            # s6-svc takes one directory: a constant loop over "$@" (argv, never spliced).
            "/bin/sh", "-c", 'f=$1; shift; rc=0; for d in "$@"; do /command/s6-svc "$f" "$d" || rc=$?; done; exit $rc',
            "s6-svc-each", flag, *dirs]
    return subprocess.run(argv, capture_output=True).returncode


# The program s6-svlisten runs once it has subscribed, for a stop: a constant (argv carries the
# profile names, never code).
_SIGNAL_PLANNED_STOPS = ("import sys; sys.path.insert(0, '/opt/hermes/docker'); "
                         "from hermes_supervise.operations import signal_planned_stops; "
                         "sys.exit(signal_planned_stops(sys.argv[1:]))")


def signal_planned_stops(profiles: list[str]) -> int:
    """Stop each gateway as hermes' own `gateway stop` does: its planned-stop marker, then one
    SIGTERM at once from the same process.

    Why not `s6-svc -d`: s6-svlisten and s6-svc start between our marker and s6's SIGTERM, and
    hermes polls for the marker every 0.5 s too; on a loaded host the poll can win, shut the
    gateway down and consume the marker, and s6's SIGTERM then arrives as a second, unexpected
    signal, after which hermes records no clean stop and exits non-zero. So s6 is told not to
    restart the gateway (-O: no signal), and the only signal is ours, sent right after the marker."""
    rc = 0
    for profile in profiles:
        slot = str(slot_dir(profile))
        if subprocess.run([s6("s6-svc"), "-O", slot]).returncode != 0:
            rc = 1
            continue
        pid = (slot_status(profile) or {}).get("pid")  # after -O: no restart can change it now
        if pid is None:
            continue
        write_planned_stop_marker(profile_dir(profile), pid)
        try:
            os.kill(pid, signal.SIGTERM)
            os.kill(pid, signal.SIGCONT)  # as s6 does: a stopped process must see its SIGTERM
        except ProcessLookupError:
            pass  # it died on its own meanwhile: down, as wanted
    return rc


def _listen_and_stop(profiles: list[str], timeout_s: float) -> int:
    if not profiles:
        return 0
    argv = [s6("s6-svlisten"), "-D", "-a", "-t", str(int(timeout_s * 1000)), *map(str, map(slot_dir, profiles)), "",
            sys.executable, "-I", "-c", _SIGNAL_PLANNED_STOPS, *profiles]
    rc = subprocess.run(argv, capture_output=True).returncode
    # Wanted down for good (-O only forgoes the restart): what `s6-svc -d` would have left.
    for profile in profiles:
        subprocess.run([s6("s6-svc"), "-d", str(slot_dir(profile))], capture_output=True)
    return rc


# hermes' own verdict on a start, in gateway_state.json (written by the gateway with its pid).
STARTED_STATES = {"running", "degraded"}
FAILED_STATES = {"startup_failed"}
READY_POLL_S = 0.2


def _startup_verdict(profile: str, pid: int) -> str | None:
    data = read_state(profile_dir(profile)) or {}
    if data.get("pid") != pid:
        return None  # not yet written by this process
    state = data.get("gateway_state")
    return "ready" if state in STARTED_STATES else "failed" if state in FAILED_STATES else None


def wait_started(acted: dict, deadline: float) -> dict:
    """Until each gateway that came up (`acted`: its status right after) has said how its start
    went: `ready`, `failed` (hermes says startup_failed), `died` (down, or another pid: s6
    restarted it), or `unconfirmed` at the deadline."""
    verdicts = {p: "died" for p, st in acted.items() if not (st and st["up"])}
    pending = [p for p in acted if p not in verdicts]
    while pending:
        for p in list(pending):
            st = slot_status(p)
            verdict = "died" if not (st and st["up"] and st["pid"] == acted[p]["pid"]) else \
                _startup_verdict(p, st["pid"])
            if verdict:
                verdicts[p] = verdict
                pending.remove(p)
        if pending and time.time() >= deadline:
            verdicts.update({p: "unconfirmed" for p in pending})
            break
        if pending:
            time.sleep(READY_POLL_S)
    return verdicts


def operate(verb: str, profiles: list[str], *, timeout_s: float, settle_s: float, lock_wait_s: float,
            wait_ready: bool = False) -> dict:
    """start, stop or restart gateways under the lock; what each was before, right after acting
    (`acted`) and after the settle time. With `wait_ready`, a start or restart also waits (up to
    timeout_s) for hermes' own verdict on each start (`startup`) before settling."""
    profiles = [require_valid_profile(p) for p in profiles]
    with container_lock(lock_wait_s) as waited:
        registered = []
        if verb in ("start", "restart"):
            registered = register_missing(profiles)
        before = {p: slot_status(p) for p in profiles}
        want_up = verb in ("start", "restart")
        started = time.time()
        for p in profiles:
            write_desired_state(profile_dir(p), "running" if want_up else "stopped")
        supervised = [p for p in profiles if before[p] is not None]
        # Recorded before acting, with the longest the operation may take, so that the deaths it
        # causes are its own wherever they are seen first (a watcher reports them at once).
        longest = 3 * timeout_s + settle_s + 5
        for p in supervised:
            record_operation(p, verb, started, started + longest)
        for p in supervised:
            # The slot's `down` file follows the intent too, so a supervisor that is killed and
            # respawned by s6-svscan starts (or keeps down) what the operator asked for.
            down = slot_dir(p) / "down"
            if want_up:
                down.unlink(missing_ok=True)
            else:
                down.touch()
        if verb == "start":
            rc = _listen_and_act(supervised, "-u", "-u", timeout_s)
        elif verb == "stop":
            rc = _listen_and_stop(supervised, timeout_s)
        elif verb == "restart":
            running = [p for p in supervised if before[p]["up"]]
            # A planned stop (hermes records it and exits 0), then up: never s6's bare SIGTERM,
            # which hermes reads as an unexpected signal (exit 1, no clean-stop record).
            rc = _listen_and_stop(running, timeout_s)
            rc = _listen_and_act(supervised, "-u", "-u", timeout_s) or rc
        else:
            raise ValueError(f"unknown operation {verb!r}")
        acted_at = time.time()  # the operation's own deaths are before this; later ones are not
        acted = {p: slot_status(p) for p in profiles}
        startup = {}
        if want_up and wait_ready:
            startup = wait_started({p: acted[p] for p in supervised}, time.time() + timeout_s)
        if want_up and settle_s > 0:
            time.sleep(settle_s)  # a gateway that dies right after starting must not count as up
        after = {p: slot_status(p) for p in profiles}
        for p in supervised:
            # Its real end: a death while it settles is a failed start, not a planned one.
            record_operation(p, verb, started, acted_at)
    return {"schema": SCHEMA, "verb": verb, "waited_s": round(waited, 3), "wait_rc": rc,
            "gateways": {p: {"before": before[p], "acted": acted[p], "after": after[p],
                             **({"startup": startup[p]} if p in startup else {})} for p in profiles},
            "registered": registered}



SUPERVISED_WAIT_S = 10.0  # a new slot's s6-supervise starts after the rescan: s6-svc needs it


def register_missing(profiles: list[str], wait_s: float = SUPERVISED_WAIT_S) -> list[str]:
    """Register, down, the slot of each profile that has none and that the reconciler would give
    one (names.slot_refusal), and wait until s6 supervises it: what a start of a profile made
    since the boot (`hermes profile install`, copied in, a bind-mounted home) needs first. The
    slot's scripts are ours (slots.register), written by hermes for the scanner hermes runs."""
    from .names import slot_refusal
    from .slots import register
    home = str(hermes_home())
    made = []
    for p in profiles:
        if not slot_dir(p).exists() and slot_refusal(home, p) is None:
            register(p, start=False)
            made.append(p)
    deadline = time.monotonic() + wait_s
    for p in made:
        while subprocess.run([s6("s6-svok"), str(slot_dir(p))], capture_output=True).returncode != 0:
            if time.monotonic() >= deadline:
                break
            time.sleep(0.05)
    return made


def operate_json(verb: str, profiles: list[str], **kwargs) -> str:
    return json.dumps(operate(verb, profiles, **kwargs))
