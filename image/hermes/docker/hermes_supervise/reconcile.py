# Runs as hermes: cont-init 02 (hermes-slots reconcile, after s6-setuidgid hermes) at every boot.
"""Boot-time reconciliation, as hermes: the static services the hermes-run scanner supervises,
then one slot per persistent profile (started only if it was running); then wait until every
slot is supervised and every one that should be up is up, and only then write the boot log's
`default` line, the readiness signal (nothing registered right after it can find the scanner
not yet listening)."""
import datetime
import os
import sys
import time
from pathlib import Path

from . import layout, role, static
from .names import slot_refusal
from .paths import DEFAULT_PROFILE, SCANDIR, hermes_home, profile_dir, slot_dir
from .s6state import parse_status, read_small, supervised
from .slots import SlotError, register, rescan
from .state import STATE_FILE, resolved_state, seed_running_state

SCANNER_WAIT_S = 120.0     # a slow host (--cpus 0.25) takes seconds to start the scanner
SLOTS_WAIT_S = 120.0

BOOT_WARNINGS = Path("/run/s6/boot-warnings")

BOOT_LOG = "container-boot.log"
ROTATE_BYTES = 256 * 1024
STALE_RUNTIME_FILES = ("gateway.pid", "processes.json")


def _timestamp() -> str:
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")


class BootLog:
    """$HERMES_HOME/logs/container-boot.log, one line per profile, rotated to .1 at 256 KiB.
    Every line also goes to docker logs; when logs/ is not a usable directory (hermes replaced it
    by a symlink or a file), docker logs is the only copy and the boot goes on."""

    def __init__(self, home: Path):
        self.path: Path | None = home / "logs" / BOOT_LOG
        if not self.path.parent.is_dir() or self.path.parent.is_symlink():
            self.path = None
            return
        try:
            if self.path.stat().st_size >= ROTATE_BYTES:
                os.replace(self.path, self.path.with_name(BOOT_LOG + ".1"))
        except OSError:
            pass

    def write(self, **fields: object) -> None:
        line = " ".join([_timestamp(), *(f"{k}={v}" for k, v in fields.items())])
        print(f"02-reconcile-profiles: {line}", file=sys.stderr, flush=True)
        if self.path is None:
            return
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW | os.O_NONBLOCK, 0o644)
            with os.fdopen(fd, "a") as f:
                f.write(line + "\n")
        except OSError as exc:
            print(f"02-reconcile-profiles: cannot write {self.path}: {exc.strerror}", file=sys.stderr)
            self.path = None


def _candidates(home: Path) -> list[tuple[str, str | None]]:
    """(name, reason to skip or None) for every entry under profiles/, sorted (names.slot_refusal:
    the same rule decides a `gateway start` of a profile without a slot)."""
    root = home / "profiles"
    if root.is_symlink() or not root.is_dir():
        return []
    return [(entry.name, slot_refusal(str(home), entry.name))
            for entry in sorted(root.iterdir()) if not entry.name.startswith(".")]


def _restore(profile: str, *, autostart: bool = True) -> dict:
    """Register the profile's slot (started if it was running); the boot-log fields to write."""
    directory = profile_dir(profile)
    prior = resolved_state(directory)
    start = autostart and prior == "running"
    for name in STALE_RUNTIME_FILES:
        try:
            (directory / name).unlink()
        except FileNotFoundError:
            pass
    if not slot_dir(profile).exists():
        register(profile, start=start, scan=False)
    return {"profile": profile, "prior_state": prior, "action": "started" if start else "registered"}


def _copy_boot_warnings(log: BootLog) -> None:
    """Root's warnings from 01-hermes-setup (a failed chown, a refused symlink) join the boot log."""
    try:
        lines = BOOT_WARNINGS.read_text(errors="replace").splitlines()
    except OSError:
        return
    for line in lines[:50]:
        log.write(stage="01-hermes-setup", warning=repr(line))


def wait_for_scanner(timeout_s: float = SCANNER_WAIT_S) -> bool:
    """The hermes-run s6-svscan answers on /run/service (a rescan request is accepted)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            rescan()
            return True
        except SlotError:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)


def _settled(service: Path) -> bool:
    """Supervised, and up unless it is meant to be down (a `down` file) or has already run and
    died (a crashing service is the healthcheck's business, not the boot's)."""
    if not supervised(str(service)):
        return False
    if (service / "down").exists():
        return True
    status = parse_status(read_small(str(service / "supervise" / "status")), time.time(), normally_up=True)
    if status is not None and status["up"]:
        return True
    return bool(read_small(str(service / "supervise" / "death_tally")))


def wait_until_settled(services: list[Path], timeout_s: float = SLOTS_WAIT_S) -> list[str]:
    """Every service (and its logger) settled; returns the names still not settled at the deadline."""
    pending = [s for s in services] + [s / "log" for s in services if (s / "log").is_dir()]
    deadline = time.monotonic() + timeout_s
    while pending and time.monotonic() < deadline:
        pending = [s for s in pending if not _settled(s)]
        if pending:
            time.sleep(0.05)
    return [str(s.relative_to(SCANDIR)) for s in pending]


def _report_layout(home: Path, log: BootLog) -> None:
    for problem in layout.problems(str(home)):
        log.write(stage="layout", warning=repr(layout.describe(problem)))


def reconcile() -> int:
    home = hermes_home()
    log = BootLog(home)
    _copy_boot_warnings(log)
    _report_layout(home, log)
    if not wait_for_scanner():
        log.write(stage="scanner", warning=repr("the hermes-run s6-svscan on /run/service did not answer"))
    services = []
    for name in static.names():
        try:
            services.append(static.install(name))
        except OSError as exc:
            log.write(service=name, action="failed", reason=type(exc).__name__)
    args = role.container_args()
    reason = role.skip_reason(args)
    if reason:
        # No gateway slot at all, as hermes-agent 0.19.0 does in a dashboard container: the
        # gateways belong to the container that runs them. The default line still marks the boot.
        _settle(services, log)
        log.write(profile=DEFAULT_PROFILE, action="skipped", reason=reason)
        return 0
    if role.legacy_gateway_run(args) and not (home / STATE_FILE).exists():
        seed_running_state(home, migrated_from="legacy-container-cmd")
    multiplex = role.multiplex()
    failures = 0
    named = []
    for name, reason in _candidates(home):
        if reason:
            log.write(profile=name, action="skipped", reason=reason)
        else:
            named.append(name)
    for profile in named:
        try:
            log.write(**_restore(profile, autostart=not multiplex))
        except (OSError, SlotError) as exc:
            failures += 1
            log.write(profile=profile, action="failed", reason=type(exc).__name__)
            print(f"02-reconcile-profiles: {profile}: {exc}", file=sys.stderr)
    try:
        default_line = _restore(DEFAULT_PROFILE)
    except (OSError, SlotError) as exc:
        failures += 1
        default_line = {"profile": DEFAULT_PROFILE, "action": "failed", "reason": type(exc).__name__}
        print(f"02-reconcile-profiles: {DEFAULT_PROFILE}: {exc}", file=sys.stderr)
    services += [slot_dir(p) for p in [*named, DEFAULT_PROFILE] if slot_dir(p).is_dir()]
    _settle(services, log)
    # The default line comes last: its appearance tells watchers that the boot is complete.
    log.write(**default_line)
    return 1 if failures else 0


def _settle(services: list[Path], log: BootLog) -> None:
    try:
        rescan()
    except SlotError as exc:
        print(f"02-reconcile-profiles: {exc}", file=sys.stderr)
    for name in wait_until_settled(services):
        log.write(service=name, warning=repr("not supervised (or not up) in time"))
