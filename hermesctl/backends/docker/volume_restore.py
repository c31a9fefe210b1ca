"""Putting a backup back into a container's /opt/data: whole (restore) or as an upgrade's rollback.

Atomic, never "empty, then write": the archive (already verified by backup.read_manifest) is
staged beside the old data, in the volume's `.hermesctl-restore/new/` (put_archive, so any
endpoint works), and only then does a helper container of the target's image, as root, swap it
in with the image's `hermes-boot restore-swap`: a journal makes every moment of the swap
recoverable, and `restore-finish` (run before every restore, and by the image at every boot)
completes a swap that was killed or discards a staging that never completed. Killing hermesctl
at any moment leaves the old tree or the new one; the helper itself runs on without us.

A rollback is a restore of the pre-upgrade backup with the owners and modes it recorded, keeping
the failed boot's `logs/`: exact for every kind of entry (files, directories, symlinks), and
whatever the new image added is gone, whatever its type. What differed is reported.
"""
import hashlib
import io
import json
import os
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hermesctl.backends.docker.backup import DATA_DIR, MANIFEST, WORKSPACE, _relative, _stream_tar, run_helper, settle_helpers
from hermesctl.backends.docker.endpoint import Endpoint
from hermesctl.core import interrupt
from hermesctl.core.errors import HermesctlError
from hermesctl.core.exit_codes import ExitStatus

BOOT = "/opt/hermes/docker/hermes-boot"
# The staging directory as a put_archive at "/" names it (at "/", Docker's extraction accepts
# every symlink target; the archive's entries were checked by read_manifest).
STAGE = f"{DATA_DIR.strip('/')}/{WORKSPACE}"
STAGED_MARKER = "staged"  # the image's restore_swap.STAGED
KEPT_ON_ROLLBACK = ("logs",)
# The swap's fault injection (the image's restore_swap: pause before step N, for S seconds),
# passed on from our environment to the swap's helper: how tests interrupt a restore mid-swap.
SWAP_FAULT_ENV = ("HERMES_RESTORE_PAUSE_AT", "HERMES_RESTORE_PAUSE_FOR")  # a failed boot's log lines are worth reading


def restore_tree(endpoint: Endpoint, container_id: str, archive: Path, image: str, *,
                 owners: tuple[int, int] | None, keep: tuple[str, ...] = ()) -> int:
    """Replace the (stopped) container's /opt/data with the archive's tree, but the top-level
    names in `keep`. `owners`: (uid, gid) for every entry, or None for the archive's own.
    Returns how many entries were written.

    Ctrl-C before the swap begins keeps the old tree (RestoreInterrupted says so); once the swap
    has begun it is finished first, then RestoreInterrupted says the restored tree is in place."""
    finish = [BOOT, "restore-finish", DATA_DIR]
    try:
        settle_helpers(endpoint, container_id)
        run_helper(endpoint, container_id, image, finish)  # a half-done earlier restore, completed
        try:
            written = stage_archive(endpoint, container_id, archive, owners)
        except Exception:
            try:
                run_helper(endpoint, container_id, image, finish)  # discards the partial staging
            except Exception:  # noqa: BLE001 - the next restore or boot discards it too
                pass
            raise
    except KeyboardInterrupt:
        interrupt.defuse()
        raise RestoreInterrupted(BEFORE_SWAP) from None
    faults = {k: os.environ[k] for k in SWAP_FAULT_ENV if k in os.environ}
    with interrupt.shielded("Ctrl-C: the swap has begun; finishing it first (Ctrl-C again leaves it to "
                            "finish on its own)") as shield:
        run_helper(endpoint, container_id, image, [BOOT, "restore-swap", DATA_DIR, *keep], environment=faults or None)
    if shield.hit:
        raise RestoreInterrupted("interrupted after the swap began: it was finished, the restored tree is in place")
    return written


BEFORE_SWAP = ("interrupted before the swap began: the old tree is in place (a partial staging is discarded "
               "by the next restore or the container's next boot)")


class RestoreInterrupted(HermesctlError):
    """Ctrl-C during a restore: the message says which whole tree the volume holds."""
    status = ExitStatus.INTERRUPTED


def _staged_entry(member: tarfile.TarInfo, rel: str, owners: tuple[int, int] | None) -> tarfile.TarInfo:
    """A new header for one archive entry, named under the staging directory. Only what a tree
    needs is carried over (type, mode, owners, size, mtime, link target): never the archive's
    own PAX records, since its `path`/`linkpath` would win over the name we give (tarfile keeps
    them in pax_headers) and Docker would write the entry where the archive said."""
    info = tarfile.TarInfo(f"{STAGE}/new" + (f"/{rel}" if rel else ""))
    info.type = tarfile.REGTYPE if member.type == tarfile.AREGTYPE else member.type
    info.mode = member.mode & 0o7777
    info.uid, info.gid = owners if owners is not None else (member.uid, member.gid)
    info.mtime = member.mtime
    if member.isfile():
        info.size = member.size
    elif member.issym():
        info.linkname = member.linkname  # data: written as a link, never followed
    elif member.islnk():
        info.linkname = f"{STAGE}/new/{_relative(member.linkname)}"
    return info


def _directory(name: str, mode: int, owners: tuple[int, int]) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, mode
    info.uid, info.gid = owners
    return info


def stage_archive(endpoint: Endpoint, container_id: str, archive: Path, owners: tuple[int, int] | None) -> int:
    """Write the archive's tree as the volume's `.hermesctl-restore/new/` (write_staging),
    nothing else; the old data is untouched until `restore-swap`."""
    with tempfile.TemporaryFile(prefix="hermesctl-restore-") as spool:
        written = write_staging(archive, owners, spool)
        spool.seek(0)
        check_staging(spool)
        spool.seek(0)
        from hermesctl.backends.docker.podman import dialect
        dialect(endpoint).put_tree(endpoint.daemon, container_id, spool, DATA_DIR)
    return written


def write_staging(archive: Path, owners: tuple[int, int] | None, spool) -> int:
    """The tar put_archive extracts at "/": the workspace (root's, 0700), the archive's tree as
    its `new/`, and last `staged` (how many entries new/ holds: the swap installs only a staging
    that completed and that nothing thinned since). Returns that count."""
    written = 0
    with tarfile.open(archive, "r:gz") as src, \
            tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as out:
        out.addfile(_directory(STAGE, 0o700, (0, 0)))
        rooted = False
        for member in src:
            rel = _relative(member.name)
            if member.name == MANIFEST or rel is None:
                continue
            if not rooted and rel != "":  # the archive left its root implicit
                out.addfile(_directory(f"{STAGE}/new", 0o755, owners or (0, 0)))
            rooted = True
            out.addfile(_staged_entry(member, rel, owners), src.extractfile(member) if member.isfile() else None)
            written += 1 if rel else 0
        marker = json.dumps({"entries": written}).encode()
        info = tarfile.TarInfo(f"{STAGE}/{STAGED_MARKER}")
        info.size, info.mode = len(marker), 0o600
        out.addfile(info, io.BytesIO(marker))
    return written


def check_staging(spool) -> None:
    """What Docker will extract, read back as a tar reader reads it (PAX records applied): every
    name inside the workspace, no `..`, hard links only to staged entries. A last line of
    defence: a name that escapes here is a bug in the code above, never written."""
    inside = f"{STAGE}/new"
    with tarfile.open(fileobj=spool, mode="r:") as tar:
        for member in tar:
            name = member.name
            parts = name.split("/")
            if any(p in ("", ".", "..") for p in parts) or not (
                    name in (STAGE, inside, f"{STAGE}/{STAGED_MARKER}") or name.startswith(inside + "/")):
                raise HermesctlError(f"restore: refusing to write {name!r}: outside the staging directory")
            if member.islnk() and not member.linkname.startswith(inside + "/"):
                raise HermesctlError(f"restore: refusing a hard link to {member.linkname!r}")


@dataclass
class DataDiff:
    changed: list[str] = field(default_factory=list)   # differs from, or missing against, the backup
    added: list[str] = field(default_factory=list)     # not in the backup, whatever its type

    @property
    def empty(self) -> bool:
        return not self.changed and not self.added


def _entry(member: tarfile.TarInfo, read) -> tuple:
    """What must match for an entry to count as the backup's: kind, mode, owners, and the
    content (files), the target (symlinks) or the file it is linked to (hard links)."""
    if member.isfile():
        digest = hashlib.sha256()
        body = read(member)
        for block in iter(lambda: body.read(1 << 20), b""):
            digest.update(block)
        what = digest.hexdigest()
    elif member.issym() or member.islnk():
        what = member.linkname
    else:
        what = ""
    return member.type, member.mode & 0o7777, member.uid, member.gid, what


def _tree(tar: tarfile.TarFile, ignore: tuple[str, ...]) -> dict[str, tuple]:
    found = {}
    for member in tar:
        rel = _relative(member.name)
        if rel is None or rel.split("/")[0] in ignore or rel.split("/")[0] == WORKSPACE:
            continue
        if member.type == tarfile.AREGTYPE:
            member.type = tarfile.REGTYPE
        found[rel] = _entry(member, tar.extractfile)
    return found


def diff_against(endpoint: Endpoint, container_id: str, archive: Path, *,
                 ignore: tuple[str, ...] = KEPT_ON_ROLLBACK) -> DataDiff:
    """How a (stopped) container's /opt/data differs from a backup, entry by entry."""
    with tarfile.open(archive, "r:gz") as tar:
        expected = _tree(tar, ignore)
    with _stream_tar(endpoint, container_id, DATA_DIR) as tar:
        found = _tree(tar, ignore)
    return DataDiff(changed=sorted(r for r, e in expected.items() if found.get(r) != e),
                    added=sorted(r for r in found if r not in expected))


def roll_back_data(endpoint: Endpoint, container_id: str, image: str, archive: Path) -> DataDiff:
    """Put the volume back exactly as the backup has it (logs aside); returns what differed."""
    diff = diff_against(endpoint, container_id, archive)
    if not diff.empty:
        from hermesctl.backends.docker.podman import dialect
        owners = None
        if not dialect(endpoint).archive_owners:  # the archive's ids are not the files' (Podman)
            from hermesctl.backends.docker.backup import owner_ids
            owners = owner_ids(endpoint, container_id, image)
        restore_tree(endpoint, container_id, archive, image, owners=owners, keep=KEPT_ON_ROLLBACK)
    return diff

