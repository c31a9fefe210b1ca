"""Targets: `CONTAINER[:PROFILE]`, globs on either side, matched against what exists."""
import difflib
import fnmatch
import re
from dataclasses import dataclass

from hermesctl.core.errors import InvalidNameError, NotFoundError, UsageError
from hermesctl.model.names import PROFILE_NAME

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


@dataclass(frozen=True)
class Candidate:
    """What a target's container part is matched against: a container's name, id and compose
    (or swarm) service, and its endpoint (a service's containers are counted per endpoint)."""
    name: str
    id: str = ""
    service: str | None = None
    endpoint: str = ""


def selected_names(pattern: str, candidates: list[Candidate]) -> list[str]:
    """The one rule every path uses (Fleet, the live fleet of events/--watch/serve, a served ps):
    a glob matches container names and service names (compose calls containers
    `<project>-<service>-N`, so `hermes-*` selects the containers of services hermes-1, hermes-2);
    a plain word is a container name, else an id prefix (3+ characters, unique), else a service
    with exactly one container. Nothing selected: []."""
    if is_glob(pattern):
        return sorted({c.name for c in candidates if fnmatch.fnmatchcase(c.name, pattern)
                       or (c.service is not None and fnmatch.fnmatchcase(c.service, pattern))})
    if any(c.name == pattern for c in candidates):
        return [pattern]
    found = sorted({c.name for c in candidates if len(pattern) >= 3 and c.id.startswith(pattern)})
    if len(found) > 1:
        raise UsageError(f"container id prefix {pattern!r} is ambiguous: {', '.join(found)}")
    if found:
        return found
    in_service = {(c.endpoint, c.name) for c in candidates if c.service == pattern}
    return [in_service.pop()[1]] if len(in_service) == 1 else []


def match_containers(pattern: str, candidates: list[Candidate]) -> list[str]:
    """Container names matching `pattern` (selected_names). Raises NotFoundError naming close matches."""
    found = selected_names(pattern, candidates)
    if not found:
        names = sorted({c.name for c in candidates})
        raise NotFoundError(f"no Hermes container matches {pattern!r}{_suggest(pattern, names)}")
    return found


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
