# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""Profile names, as hermes-agent accepts them (also safe as s6 service directory names), and
which profile directories get a gateway slot."""
import os
import re
import stat

from . import contract as C

PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # fullmatch: `$` accepts a final newline


def is_valid_profile(name: str) -> bool:
    return isinstance(name, str) and bool(PROFILE_NAME.fullmatch(name))


def require_valid_profile(name: str) -> str:
    if not is_valid_profile(name):
        raise ValueError(f"invalid profile name {name!r}: must be 1-64 of a-z 0-9 _ -, starting with a letter or digit")
    return name


def slot_refusal(home: str, name: str) -> str | None:
    """Why HERMES_HOME/profiles/<name> gets no gateway slot, or None when it gets one: the one
    rule of the boot's reconciler, of a `gateway start` of a profile without a slot (the agent's
    `operate`, and `hermes -p NAME gateway start` in the container: `ensure-slot`) and of the
    `unslotted` profiles `status` reports. A real directory (never a symlink), under a real
    profiles/ directory, named as a profile (not `default`), holding SOUL.md."""
    root = f"{home}/{C.PROFILES_DIR}"
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode):
            return "no-profiles-directory"
        st = os.lstat(f"{root}/{name}")
    except (OSError, ValueError):  # ValueError: a NUL in the name
        return "no-such-profile"
    if not stat.S_ISDIR(st.st_mode):
        return "not-a-directory"
    if name == C.DEFAULT_PROFILE:
        return "reserved-name"
    if not is_valid_profile(name):
        return "invalid-name"
    if not os.path.isfile(f"{root}/{name}/{C.SOUL_FILE}"):
        return "no-SOUL.md"
    return None
