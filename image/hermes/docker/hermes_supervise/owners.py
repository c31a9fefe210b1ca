# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""`owner-ids` (runs as hermes: in the container, or in a helper container of the image that
carries a stopped container's environment): the uid and gid hermes' files belong to, which
hermesctl restore gives every entry it writes into the volume.

The boot remaps the hermes user to HERMES_UID / HERMES_GID (aliases PUID / PGID) at every boot by
the rule in owner_rule.py, which this reads too: those decide; without them, the hermes user's own
entry. A booted container's /etc/passwd is already remapped, and a helper of the image has the
environment only: both give the same answer, so the host never reads a container's /etc/passwd."""
import pwd

from owner_rule import OwnerRuleError, wanted_ids

USER = "hermes"


class OwnerError(Exception):
    """code: the contract's error code (`not-found`: no hermes user; `failed`: a remap value the
    boot itself would refuse)."""

    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code


def owner_ids(environ, lookup=None) -> dict:
    try:
        uid, gid = wanted_ids(environ)
    except OwnerRuleError as exc:
        raise OwnerError("failed", f"{exc} (the container cannot boot)") from None
    if uid is None or gid is None:
        try:
            entry = (lookup or pwd.getpwnam)(USER)
        except KeyError:
            raise OwnerError("not-found", f"no {USER} user in this image") from None
        uid = entry.pw_uid if uid is None else uid
        gid = entry.pw_gid if gid is None else gid
    return {"user": USER, "uid": uid, "gid": gid}
