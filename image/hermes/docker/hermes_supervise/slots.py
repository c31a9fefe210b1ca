# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""Registering and unregistering gateway slots in the s6 scan directory."""
import shutil
import subprocess
import time
from pathlib import Path

from .names import require_valid_profile
from .paths import SCANDIR, s6, slot_dir
from .render import finish_script, log_run_script, run_script


class SlotError(RuntimeError):
    pass


def _write(path: Path, text: str, mode: int) -> None:
    path.write_text(text)
    path.chmod(mode)


def _write_scripts(profile: str, target: Path) -> None:
    """run, finish and log/run, each replaced atomically (s6 reads them at every start)."""
    for relative, text in (("run", run_script(profile)), ("finish", finish_script()),
                           ("log/run", log_run_script(profile))):
        path = target / relative
        tmp = path.with_name(f".{path.name}.tmp")
        _write(tmp, text, 0o755)
        tmp.rename(path)


def build_slot(profile: str, target: Path, *, start: bool) -> None:
    """Lay a complete slot out at `target` (a dot-named staging directory)."""
    target.mkdir(mode=0o755)
    _write(target / "type", "longrun\n", 0o644)
    (target / "log").mkdir(mode=0o755)
    _write_scripts(profile, target)
    # No supervise/ skeleton: the scanner of /run/service runs as hermes, so s6-supervise makes
    # supervise/ and event/ hermes' own and every hermes tool can use them.
    if not start:
        (target / "down").touch()


def adopt(profile: str) -> None:
    """Re-render the scripts of an existing slot (one made by `hermes profile create`, say), so
    every slot runs the same scripts; takes effect at the gateway's next start."""
    require_valid_profile(profile)
    service = slot_dir(profile)
    if not (service / "log").is_dir():
        raise SlotError(f"gateway {profile} is not registered")
    _write_scripts(profile, service)


def rescan() -> None:
    result = subprocess.run([s6("s6-svscanctl"), "-a", str(SCANDIR)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SlotError(f"s6-svscanctl -a failed ({result.returncode}): {result.stderr.strip()}")


def register(profile: str, *, start: bool, scan: bool = True) -> Path:
    """Create /run/service/gateway-<profile>: built under a dot name (s6-svscan ignores those),
    renamed into place, then picked up by a rescan."""
    require_valid_profile(profile)
    final = slot_dir(profile)
    if final.exists():
        raise SlotError(f"gateway {profile} is already registered")
    staging = final.with_name(f".{final.name}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    try:
        build_slot(profile, staging, start=start)
        staging.rename(final)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise SlotError(f"cannot build slot for {profile}: {exc}") from exc
    if scan:
        rescan()
    return final


def _supervised(service: Path) -> bool:
    return subprocess.run([s6("s6-svok"), str(service)], capture_output=True).returncode == 0


def supervised_pid(profile: str) -> int | None:
    """The pid of the running gateway of `profile`, or None when it is down or unsupervised."""
    result = subprocess.run([s6("s6-svstat"), "-o", "pid", str(slot_dir(profile))],
                            capture_output=True, text=True)
    try:
        pid = int(result.stdout.strip())
    except ValueError:
        return None
    return pid if result.returncode == 0 and pid > 0 else None


def unregister(profile: str, *, timeout_s: float = 10.0) -> bool:
    """Stop the gateway, drop its supervisors and remove the slot. False if there was none."""
    require_valid_profile(profile)
    service = slot_dir(profile)
    if not service.is_dir():
        return False
    subprocess.run([s6("s6-svc"), "-d", str(service)], capture_output=True)
    subprocess.run([s6("s6-svwait"), "-D", "-t", str(int(timeout_s * 1000)), str(service)],
                   capture_output=True)
    # Hide the slot from the scanner, then prune: its supervisors (service and logger) exit.
    hidden = service.with_name(f".{service.name}.removing")
    shutil.rmtree(hidden, ignore_errors=True)
    service.rename(hidden)
    subprocess.run([s6("s6-svscanctl"), "-an", str(SCANDIR)], capture_output=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and (_supervised(hidden) or _supervised(hidden / "log")):
        time.sleep(0.05)
    shutil.rmtree(hidden, ignore_errors=True)
    return True
