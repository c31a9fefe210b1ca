# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""Reading and writing a profile's gateway_state.json."""
import json
import os
import time
from pathlib import Path

from .contract import STATE_FILE
# A gateway that was draining or degraded when the container went down was still meant to run.
_RUNNING_LIKE = {"running", "draining", "degraded"}


def read_state(profile_dir: Path) -> dict | None:
    """The parsed state file, or None when it is missing, unreadable or not a JSON object."""
    try:
        data = json.loads((profile_dir / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def resolved_state(profile_dir: Path) -> str | None:
    """What the reconciler acts on: desired_state if set, else gateway_state (running-like
    states counted as running); None when there is no usable file."""
    data = read_state(profile_dir)
    if data is None:
        return None
    desired = data.get("desired_state")
    if isinstance(desired, str):
        return desired
    current = data.get("gateway_state")
    if current in _RUNNING_LIKE:
        return "running"
    return current if isinstance(current, str) else None


def write_desired_state(profile_dir: Path, desired: str) -> None:
    """Record the operator's intent (read-merge-write, atomic rename) so it survives a restart.
    A corrupt file is replaced by a fresh object rather than blocking the lifecycle command."""
    if desired not in ("running", "stopped"):
        raise ValueError(f"desired_state must be running or stopped, not {desired!r}")
    data = read_state(profile_dir) or {}
    data["desired_state"] = desired
    data["updated_at"] = int(time.time())
    path = profile_dir / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, separators=(",", ":")) + "\n")
    os.replace(tmp, path)


def seed_running_state(profile_dir: Path, **extra: object) -> None:
    """A first gateway_state.json that says the gateway is meant to run (never over a file)."""
    record = {"gateway_state": "running", "desired_state": "running",
              "updated_at": int(time.time()), **extra}
    fd = os.open(profile_dir / STATE_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(json.dumps(record) + "\n")


PLANNED_STOP_MARKER = ".gateway-planned-stop.json"


def _process_start_time(pid: int) -> int | None:
    """Field 22 of /proc/<pid>/stat: with the pid, identifies one process across pid reuse."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[19])


def write_planned_stop_marker(profile_dir: Path, pid: int) -> None:
    """Tell the gateway `pid` that the coming SIGTERM is an operator's stop, so it exits 0 and
    records gateway_state=stopped (hermes-agent's own marker format)."""
    import datetime

    record = {
        "target_pid": pid,
        "target_start_time": _process_start_time(pid),
        "stopper_pid": os.getpid(),
        "written_at": datetime.datetime.now(datetime.timezone.utc).isoformat(),
    }
    path = profile_dir / PLANNED_STOP_MARKER
    tmp = path.with_name(f"{PLANNED_STOP_MARKER}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record) + "\n")
    os.replace(tmp, path)
