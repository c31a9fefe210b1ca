"""Where things live inside a Hermes container."""
import os
from pathlib import Path

SCANDIR = Path("/run/service")
S6 = Path("/command")
SLOT_PREFIX = "gateway-"
DEFAULT_PROFILE = "default"


def hermes_home() -> Path:
    return Path(os.environ.get("HERMES_HOME", "/opt/data"))


def profile_dir(profile: str) -> Path:
    """The persistent directory of a profile; `default` is HERMES_HOME itself."""
    home = hermes_home()
    return home if profile == DEFAULT_PROFILE else home / "profiles" / profile


def slot_dir(profile: str) -> Path:
    return SCANDIR / f"{SLOT_PREFIX}{profile}"


def s6(program: str) -> str:
    """Absolute path of an s6 program: /command is not on every caller's PATH."""
    return str(S6 / program)


def all_profiles() -> list[str]:
    """`default` and every directory under profiles/ that holds SOUL.md."""
    root = hermes_home() / "profiles"
    named = sorted(p.name for p in root.iterdir() if (p / "SOUL.md").is_file()) if root.is_dir() else []
    return [DEFAULT_PROFILE, *named]
