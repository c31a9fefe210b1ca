# Runs as root or hermes: imported by hermes-boot as root (the boot's remap) and by the agent as hermes (owner-ids).
"""The one rule for the uid and gid hermes' files belong to: HERMES_UID / HERMES_GID (aliases PUID
/ PGID; the primary name wins, an empty value is unset), each a whole number within 1..65534.
The boot remaps the hermes user to them (hermes_root.remap) and the agent's owner-ids answers
them; both read them here, so the two can never disagree."""

UID_VARS = ("HERMES_UID", "PUID")
GID_VARS = ("HERMES_GID", "PGID")
ID_RANGE = (1, 65534)


class OwnerRuleError(ValueError):
    """A value the boot refuses (and so the container cannot boot with)."""


def wanted(environ, names: tuple[str, str]) -> int | None:
    """The id asked for by (variable, alias) in environ, or None when neither is set."""
    text = environ.get(names[0]) or environ.get(names[1]) or ""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not ID_RANGE[0] <= int(text) <= ID_RANGE[1]:
        raise OwnerRuleError(f"{names[0]}/{names[1]} must be digits within {ID_RANGE[0]}..{ID_RANGE[1]}, "
                             f"got {text[:40]!r}")
    return int(text)


def wanted_ids(environ) -> tuple[int | None, int | None]:
    """(uid, gid) asked for; None for either one not asked for."""
    return wanted(environ, UID_VARS), wanted(environ, GID_VARS)
