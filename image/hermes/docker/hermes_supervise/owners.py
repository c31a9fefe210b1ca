# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""`owner-ids` (runs as hermes: in the container, or in a helper container of the image that
carries a stopped container's environment): the uid and gid hermes' files belong to, which
hermesctl restore gives every entry it writes into the volume.

01-hermes-setup remaps the hermes user to HERMES_UID / HERMES_GID (aliases PUID / PGID) at every
boot, so those decide; without them, the hermes user's own entry. A booted container's
/etc/passwd is already remapped, and a helper of the image has the environment only: both give
the same answer, so the host never reads a container's /etc/passwd itself."""
import pwd

USER = "hermes"
# (variable, alias) for each id, as 01-hermes-setup reads them; the same bounds as it checks.
UID_VARS = ("HERMES_UID", "PUID")
GID_VARS = ("HERMES_GID", "PGID")
ID_RANGE = (1, 65534)


class OwnerError(Exception):
    """code: the contract's error code (`not-found`: no hermes user; `failed`: a remap value the
    boot itself would refuse)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def _wanted(environ, names: tuple[str, str]) -> int | None:
    text = environ.get(names[0]) or environ.get(names[1]) or ""
    if not text:
        return None
    if not (text.isascii() and text.isdigit()) or not ID_RANGE[0] <= int(text) <= ID_RANGE[1]:
        raise OwnerError("failed", f"{names[0]}/{names[1]} must be a whole number within "
                                   f"{ID_RANGE[0]}..{ID_RANGE[1]}, not {text[:40]!r} (the container cannot boot)")
    return int(text)


def owner_ids(environ, lookup=None) -> dict:
    uid, gid = _wanted(environ, UID_VARS), _wanted(environ, GID_VARS)
    if uid is None or gid is None:
        try:
            entry = (lookup or pwd.getpwnam)(USER)
        except KeyError:
            raise OwnerError("not-found", f"no {USER} user in this image") from None
        uid = entry.pw_uid if uid is None else uid
        gid = entry.pw_gid if gid is None else gid
    return {"user": USER, "uid": uid, "gid": gid}
