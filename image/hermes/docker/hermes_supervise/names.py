# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""Profile names, as hermes-agent accepts them (also safe as s6 service directory names)."""
import re

PROFILE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")  # fullmatch: `$` accepts a final newline


def is_valid_profile(name: str) -> bool:
    return isinstance(name, str) and bool(PROFILE_NAME.fullmatch(name))


def require_valid_profile(name: str) -> str:
    if not is_valid_profile(name):
        raise ValueError(f"invalid profile name {name!r}: must be 1-64 of a-z 0-9 _ -, starting with a letter or digit")
    return name
