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
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hermesctl.backup import DATA_DIR, MANIFEST, WORKSPACE, _relative, _stream_tar, run_helper, settle_helpers
from hermesctl.endpoints import Endpoint

BOOT = "/opt/hermes/docker/hermes-boot"
# The staging directory as a put_archive at "/" names it (at "/", Docker's extraction accepts
# every symlink target; the archive's entries were checked by read_manifest).
STAGE = f"{DATA_DIR.strip('/')}/{WORKSPACE}"
KEPT_ON_ROLLBACK = ("logs",)  # a failed boot's log lines are worth reading


def restore_tree(endpoint: Endpoint, container_id: str, archive: Path, image: str, *,
                 owners: tuple[int, int] | None, keep: tuple[str, ...] = ()) -> int:
    """Replace the (stopped) container's /opt/data with the archive's tree, but the top-level
    names in `keep`. `owners`: (uid, gid) for every entry, or None for the archive's own.
    Returns how many entries were written."""
    settle_helpers(endpoint, container_id)
    finish = [BOOT, "restore-finish", DATA_DIR]
    run_helper(endpoint, container_id, image, finish)  # a half-done earlier restore, completed
    try:
        written = stage_archive(endpoint, container_id, archive, owners)
    except Exception:
        try:
            run_helper(endpoint, container_id, image, finish)  # discards the partial staging
        except Exception:  # noqa: BLE001 - the next restore or boot discards it too
            pass
        raise
    run_helper(endpoint, container_id, image, [BOOT, "restore-swap", DATA_DIR, *keep])
    return written


def stage_archive(endpoint: Endpoint, container_id: str, archive: Path, owners: tuple[int, int] | None) -> int:
    """Write the archive's tree as the volume's `.hermesctl-restore/new/` (the workspace root's,
    0700), nothing else; the old data is untouched until `restore-swap`."""
    written = 0
    with tempfile.TemporaryFile(prefix="hermesctl-restore-") as spool:
        with tarfile.open(archive, "r:gz") as src, tarfile.open(fileobj=spool, mode="w") as out:
            workspace = tarfile.TarInfo(STAGE)
            workspace.type, workspace.mode, workspace.uid, workspace.gid = tarfile.DIRTYPE, 0o700, 0, 0
            out.addfile(workspace)
            rooted = False
            for member in src:
                rel = _relative(member.name)
                if member.name == MANIFEST or rel is None:
                    continue
                if not rooted and rel != "":  # the archive left its root implicit
                    root = tarfile.TarInfo(f"{STAGE}/new")
                    root.type, root.mode = tarfile.DIRTYPE, 0o755
                    root.uid, root.gid = owners or (0, 0)
                    out.addfile(root)
                rooted = True
                member.name = f"{STAGE}/new" + (f"/{rel}" if rel else "")
                if member.islnk():
                    member.linkname = f"{STAGE}/new/{_relative(member.linkname)}"
                if owners is not None:
                    member.uid, member.gid = owners
                member.uname = member.gname = ""
                out.addfile(member, src.extractfile(member) if member.isfile() else None)
                written += 1
        spool.seek(0)
        endpoint.client.api.put_archive(container_id, "/", spool)
    return written


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
        restore_tree(endpoint, container_id, archive, image, owners=None, keep=KEPT_ON_ROLLBACK)
    return diff

