"""Profile names: validated on the host before anything reaches a container."""
import re

from hermesctl.core.errors import InvalidNameError

# Used with fullmatch: `$` would accept a name followed by a newline.
PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
RESERVED_FOR_CREATION = frozenset({"hermes", "default", "test", "tmp", "root", "sudo"})
DEFAULT_PROFILE = "default"
COMPOSE_PROJECT_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,127}")  # compose's own rule (--project)


def is_profile_name(name: object) -> bool:
    """Is this, as a container reported it, a profile name? (Never lowercased: a slot named
    `Coder` or `x\x1b[2J` is not a profile of ours, whatever the agent says.)"""
    return isinstance(name, str) and PROFILE_NAME.fullmatch(name) is not None


def normalize_profile(name: str) -> str:
    """Lowercase (hermes -p silently ignores uppercase names) and validate. Non-ASCII text is
    refused before lowercasing: the Kelvin sign (U+212A) would otherwise become a valid `k`."""
    lowered = name.lower() if name.isascii() else ""
    if not PROFILE_NAME.fullmatch(lowered):
        raise InvalidNameError(
            f"invalid profile name {ascii(name) if not name.isascii() else repr(name)}: use 1-64 of a-z 0-9 _ -, starting with a letter or digit"
        )
    return lowered


def require_creatable(name: str) -> str:
    profile = normalize_profile(name)
    if profile in RESERVED_FOR_CREATION:
        raise InvalidNameError(f"profile name {profile!r} is reserved")
    return profile
