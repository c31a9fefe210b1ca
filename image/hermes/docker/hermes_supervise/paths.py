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
    root = hermes_home() / C.PROFILES_DIR
    named = sorted(p.name for p in root.iterdir() if (p / C.SOUL_FILE).is_file()) if root.is_dir() else []
    return [DEFAULT_PROFILE, *named]
