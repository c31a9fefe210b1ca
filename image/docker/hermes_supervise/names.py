"""Profile names, as hermes-agent accepts them (also safe as s6 service directory names)."""
import re

PROFILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")


def is_valid_profile(name: str) -> bool:
    return bool(PROFILE_NAME.match(name))


def require_valid_profile(name: str) -> str:
    if not is_valid_profile(name):
        raise ValueError(f"invalid profile name {name!r}: must match {PROFILE_NAME.pattern}")
    return name
