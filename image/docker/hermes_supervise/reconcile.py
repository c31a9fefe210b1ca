"""Boot-time reconciliation: one slot per persistent profile, started only if it was running."""
import datetime
import os
import sys
from pathlib import Path

from . import role
from .names import is_valid_profile
from .paths import DEFAULT_PROFILE, hermes_home, profile_dir, slot_dir
from .slots import SlotError, register, rescan
from .state import STATE_FILE, resolved_state, seed_running_state

BOOT_WARNINGS = Path("/run/s6/boot-warnings")

BOOT_LOG = "container-boot.log"
ROTATE_BYTES = 256 * 1024
STALE_RUNTIME_FILES = ("gateway.pid", "processes.json")


def _timestamp() -> str:
    return datetime.datetime.now().astimezone().strftime("%Y-%m-%dT%H:%M:%S%z")


class BootLog:
    """$HERMES_HOME/logs/container-boot.log, one line per profile, rotated to .1 at 256 KiB."""

    def __init__(self, home: Path):
        self.path = home / "logs" / BOOT_LOG
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            if self.path.stat().st_size >= ROTATE_BYTES:
                os.replace(self.path, self.path.with_name(BOOT_LOG + ".1"))
        except FileNotFoundError:
            pass

    def write(self, **fields: object) -> None:
        line = " ".join([_timestamp(), *(f"{k}={v}" for k, v in fields.items())])
        with self.path.open("a") as f:
            f.write(line + "\n")
        print(f"02-reconcile-profiles: {line}", file=sys.stderr)


def _candidates(home: Path) -> list[tuple[str, str | None]]:
    """(name, reason to skip or None) for every entry under profiles/, sorted."""
    root = home / "profiles"
    if not root.is_dir():
        return []
    found = []
    for entry in sorted(root.iterdir()):
        name = entry.name
        if name.startswith("."):
            continue
        if entry.is_symlink() or not entry.is_dir():
            found.append((name, "not-a-directory"))
        elif name == DEFAULT_PROFILE:
            found.append((name, "reserved-name"))
        elif not is_valid_profile(name):
            found.append((name, "invalid-name"))
        elif not (entry / "SOUL.md").is_file():
            found.append((name, "no-SOUL.md"))
        else:
            found.append((name, None))
    return found


def _restore(profile: str, log: BootLog, *, autostart: bool = True) -> None:
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
    log.write(profile=profile, prior_state=prior, action="started" if start else "registered")


def _copy_boot_warnings(log: BootLog) -> None:
    """Root's warnings from 01-hermes-setup (a failed chown, a refused symlink) join the boot log."""
    try:
        lines = BOOT_WARNINGS.read_text(errors="replace").splitlines()
    except OSError:
        return
    for line in lines[:50]:
        log.write(stage="01-hermes-setup", warning=repr(line))


def reconcile() -> int:
    home = hermes_home()
    log = BootLog(home)
    _copy_boot_warnings(log)
    args = role.container_args()
    reason = role.skip_reason(args)
    if reason:
        # No slot at all, as hermes-agent 0.19.0 does in a dashboard container: the gateways
        # belong to the container that runs them. The default line still marks the boot done.
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
            _restore(profile, log, autostart=not multiplex)
        except (OSError, SlotError) as exc:
            failures += 1
            log.write(profile=profile, action="failed", reason=type(exc).__name__)
            print(f"02-reconcile-profiles: {profile}: {exc}", file=sys.stderr)
    # The default line comes last: its appearance tells watchers that the boot is complete.
    _restore(DEFAULT_PROFILE, log)
    try:
        rescan()
    except SlotError:
        pass  # at boot the scanner starts after cont-init and sees every slot by itself
    return 1 if failures else 0
