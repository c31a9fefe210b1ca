# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""Is HERMES_HOME laid out as the image expects? Every standard directory must be a real
directory: hermes can replace one by a symlink or a regular file (`rm -rf logs; ln -s /etc logs`),
and that must never stop a container from booting. The boot goes on without what it cannot use,
says why in docker logs and the boot log, and `facts` reports it for `hermesctl doctor`.
"""
import os
import stat

from .contract import STANDARD_DIRS


def _what(st: os.stat_result) -> str:
    if stat.S_ISLNK(st.st_mode):
        return "symlink"
    if stat.S_ISREG(st.st_mode):
        return "regular file"
    if stat.S_ISFIFO(st.st_mode):
        return "FIFO"
    if stat.S_ISSOCK(st.st_mode):
        return "socket"
    return "special file"


def problems(home: str) -> list[dict]:
    """One entry per standard directory that exists but is not a real directory:
    {"name" (relative to home), "path", "found", "target" (a symlink's, else None), "fix"}. A missing one is not a problem
    (the boot creates it); one below a broken parent is reported through its parent only."""
    found = []
    broken: list[str] = []
    for name in STANDARD_DIRS:
        if any(name.startswith(b + "/") for b in broken):
            continue
        path = os.path.join(home, name)
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            continue
        except OSError:
            continue
        if stat.S_ISDIR(st.st_mode):
            continue
        broken.append(name)
        target = None
        if stat.S_ISLNK(st.st_mode):
            try:
                target = os.readlink(path)
            except OSError:
                target = None
        found.append({"name": name, "path": path, "found": _what(st), "target": target,
                      "fix": f"rm {path} && mkdir {path} (as hermes), then restart the container"})
    return found


def describe(problem: dict) -> str:
    """One line, safe to print: a symlink's target shown escaped."""
    what = problem["found"]
    if problem["target"] is not None:
        what += f" to {problem['target']!r}"
    return f"{problem['path']} is a {what}, not a directory: fix: {problem['fix']}"
