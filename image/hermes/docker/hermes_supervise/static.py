# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""Static services the hermes-run scanner supervises: main-hermes, dashboard, ctl-agent (their
source directories in the image carry a `run-by-hermes` marker).

They live in /run/service, where hermes-agent (its `hermes doctor`) and upstream's users
(`s6-svstat /run/service/dashboard`) look for them. hermes can rewrite them there, which is fine:
whatever they run, they run as hermes, under a supervisor that runs as hermes. Root's scan
directory keeps only what root must run (the scanner itself), so no directory root's
s6-supervise writes into is one hermes may add entries to.
"""
import os
import shutil
from pathlib import Path

from . import role
from .paths import SCANDIR

SOURCE = Path("/etc/s6-overlay/s6-rc.d")
MARKER = "run-by-hermes"
COPIED = ("type", "run", "finish", "notification-fd", "timeout-kill", "timeout-finish", "down-signal")
DASHBOARD = "dashboard"


def names(source: Path = SOURCE) -> list[str]:
    """Longruns of the `user` bundle marked run-by-hermes, in name order."""
    try:
        entries = sorted(os.listdir(source / "user" / "contents.d"))
    except OSError:
        return []
    return [n for n in entries if (source / n / MARKER).is_file() and _type(source / n) == "longrun"]


def _type(service: Path) -> str:
    try:
        return (service / "type").read_text().strip()
    except OSError:
        return ""


def starts_up(name: str) -> bool:
    """The dashboard is registered down unless HERMES_DASHBOARD asks for it, so s6-svstat and
    `hermes doctor` say `down` rather than showing a run that parks itself at once."""
    return name != DASHBOARD or role.truthy(os.environ.get("HERMES_DASHBOARD"))


def install(name: str, source: Path = SOURCE, scandir: Path = SCANDIR) -> Path:
    """Copy one static service into the scan directory (built under a dot name, then renamed)."""
    final = scandir / name
    if final.exists():
        return final
    staging = scandir / f".{name}.tmp"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(mode=0o755)
    for f in COPIED:
        if (source / name / f).is_file():
            shutil.copy2(source / name / f, staging / f)
    if not starts_up(name):
        (staging / "down").touch()
    staging.rename(final)
    return final
