# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""Where things live inside a Hermes container."""
import os
from pathlib import Path

from . import contract as C

SCANDIR = Path(C.SCANDIR)
S6 = Path(C.S6_DIR)
SLOT_PREFIX = C.SLOT_PREFIX
DEFAULT_PROFILE = C.DEFAULT_PROFILE


def hermes_home() -> Path:
    return Path(C.hermes_home(os.environ))


def profile_dir(profile: str) -> Path:
    """The persistent directory of a profile; `default` is HERMES_HOME itself."""
    return Path(C.profile_path(str(hermes_home()), profile))


def slot_dir(profile: str) -> Path:
    return Path(C.slot_path(profile))


def s6(program: str) -> str:
    """Absolute path of an s6 program: /command is not on every caller's PATH."""
    return str(S6 / program)


def all_profiles() -> list[str]:
    """`default` and every directory under profiles/ that holds SOUL.md."""
    return profile_entries()[0]


def profile_entries() -> tuple[list[str], dict[str, str]]:
    """(`default` and every directory under profiles/ that holds SOUL.md, {name: why skipped} for
    symlinks there that would otherwise be taken for one). A symlink is not a profile, as the
    reconciler registers no slot for one: `profiles/x -> coder` would read coder's state twice."""
    root = hermes_home() / C.PROFILES_DIR
    named, skipped = [], {}
    if root.is_dir() and not root.is_symlink():
        for p in sorted(root.iterdir()):
            if p.is_symlink():
                if not p.name.startswith(".") and (p / C.SOUL_FILE).is_file():
                    skipped[p.name] = "a symlink, not a profile directory"
            elif (p / C.SOUL_FILE).is_file():
                named.append(p.name)
    return [DEFAULT_PROFILE, *named], skipped
