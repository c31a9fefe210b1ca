"""Targets: `CONTAINER[:PROFILE]`, globs on either side, matched against what exists."""
import difflib
import fnmatch
import re
from dataclasses import dataclass

from hermesctl.errors import InvalidNameError, NotFoundError, UsageError
from hermesctl.names import PROFILE_NAME

GLOB_CHARS = frozenset("*?[")
# Docker container names, plus glob characters.
# Patterns are applied with fullmatch (never `$`, which also matches before a final newline) and
# only to ASCII text: nothing is lowercased or normalised before it has been checked.
_CONTAINER_PATTERN = re.compile(r"[A-Za-z0-9*?\[\]][A-Za-z0-9_.*?\[\]!-]*")
_PROFILE_PATTERN = re.compile(r"[A-Za-z0-9_*?\[\]!-]+")
MAX_TARGET = 512


def is_glob(text: str) -> bool:
    return any(c in GLOB_CHARS for c in text)


@dataclass(frozen=True)
class Target:
    container: str
    profile: str | None  # None: every gateway of the container
    endpoint: str | None = None  # ENDPOINT/CONTAINER: only that endpoint's containers

    def __str__(self) -> str:
        where = f"{self.endpoint}/{self.container}" if self.endpoint else self.container
        return where if self.profile is None else f"{where}:{self.profile}"


def parse_target(text: str) -> Target:
    """`[ENDPOINT/]CONTAINER[:PROFILE]`, each part a name or a glob."""
    if not text.isascii() or not text.isprintable() or len(text) > MAX_TARGET:
        raise UsageError(f"malformed target {ascii(text[:80])}: only printable ASCII names and globs")
    container, sep, profile = text.partition(":")
    if not container or (sep and not profile) or ":" in profile:
        raise UsageError(f"malformed target {text!r}: expected CONTAINER or CONTAINER:PROFILE")
    endpoint = None
    if "/" in container:
        endpoint, _, container = container.partition("/")
        if not _CONTAINER_PATTERN.fullmatch(endpoint) or not container:
            raise UsageError(f"malformed target {text!r}: expected ENDPOINT/CONTAINER[:PROFILE]")
    if not _CONTAINER_PATTERN.fullmatch(container):
        raise UsageError(f"malformed target {text!r}: {container!r} is not a container name or glob")
    if not sep:
        return Target(container, None, endpoint)
    if not _PROFILE_PATTERN.fullmatch(profile):
        raise InvalidNameError(f"invalid profile {profile!r} in target {text!r}: "
                               "use a-z 0-9 _ - (and * ? [ ] as globs)")
    if not is_glob(profile):
        profile = profile.lower()
        if not PROFILE_NAME.fullmatch(profile):
            raise InvalidNameError(f"invalid profile {profile!r} in target {text!r}")
    return Target(container, profile, endpoint)


def parse_targets(texts: list[str]) -> list[Target]:
    return [parse_target(t) for t in texts]


def _suggest(word: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(word, candidates, n=3, cutoff=0.5)
    return f" (did you mean {', '.join(close)}?)" if close else ""


def match_containers(pattern: str, names: dict[str, str]) -> list[str]:
    """Container names matching `pattern` (a glob, a name, or an id prefix).
    `names` maps name -> id. Raises NotFoundError naming close matches."""
    if is_glob(pattern):
        found = [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    elif pattern in names:
        found = [pattern]
    else:
        found = [n for n, cid in names.items() if len(pattern) >= 3 and cid.startswith(pattern)]
        if len(found) > 1:
            raise UsageError(f"container id prefix {pattern!r} is ambiguous: {', '.join(sorted(found))}")
    if not found:
        raise NotFoundError(f"no Hermes container matches {pattern!r}{_suggest(pattern, list(names))}")
    return sorted(found)


def match_profiles(target: Target, container: str, profiles: list[str], *, strict: bool) -> list[str]:
    """Profiles of `container` that `target` selects. With `strict` (a non-glob container), a
    missing exact profile is an error; otherwise it simply selects nothing here."""
    if target.profile is None:
        return sorted(profiles)
    if is_glob(target.profile):
        return sorted(p for p in profiles if fnmatch.fnmatchcase(p, target.profile))
    if target.profile in profiles:
        return [target.profile]
    if strict:
        raise NotFoundError(f"no gateway {target.profile!r} in {container}"
                            f"{_suggest(target.profile, profiles)}")
    return []
