# Runs as root: cont-init 01-hermes-setup (hermes-boot root), first step, at every boot.
"""Remap the hermes user and group to the ids the owner rule asks for (owner_rule.py, the rule
the agent's owner-ids answers with too). Only /etc/passwd and /etc/group change here; the volume's
ownership is the repair's job (ownership.py), which follows."""
import pwd
import subprocess

from owner_rule import OwnerRuleError, wanted_ids


class RemapError(Exception):
    """The container must not boot: a refused value, or a change the system would not make."""


def _run(argv: list[str]) -> bool:
    """The tool's own error, if any, goes to docker logs beside ours."""
    return subprocess.run(argv, stdout=subprocess.DEVNULL).returncode == 0


def remap(environ, log, user: str = "hermes") -> None:
    try:
        want_uid, want_gid = wanted_ids(environ)
    except OwnerRuleError as exc:
        raise RemapError(str(exc)) from None
    try:
        entry = pwd.getpwnam(user)
    except KeyError:
        raise RemapError(f"no {user} user in this image") from None
    if want_gid is not None and want_gid != entry.pw_gid:
        if not _run(["groupmod", "-o", "-g", str(want_gid), user]):
            raise RemapError(f"cannot set the {user} group to gid {want_gid}")
        log(f"{user} group is now gid {want_gid}")
    if want_uid is not None and want_uid != entry.pw_uid:
        # usermod -u would re-own the home directory (the data volume) itself, recursively and
        # without the repair's precautions: point the home elsewhere while the uid changes.
        if not _run(["usermod", "-d", "/nonexistent", user]):
            raise RemapError(f"cannot change the {user} user")
        changed = _run(["usermod", "-o", "-u", str(want_uid), user])
        _run(["usermod", "-d", entry.pw_dir, user])
        if not changed:
            raise RemapError(f"cannot set the {user} user to uid {want_uid}")
        log(f"{user} user is now uid {want_uid}")
