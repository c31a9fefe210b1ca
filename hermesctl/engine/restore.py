"""Backups and restores of whole instances, on any backend: a running instance is backed up
live (SQLite through its online backup API), a stopped one through its own stopped container or
a stand-in on its node; a restore stops the instance (with --force), replaces its /opt/data
through a stopped container, and starts it again as it was (same replicas)."""
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from hermesctl.backends.base import Instance
from hermesctl.backends.docker import backup
from hermesctl.backends.docker.fleet import Fleet
from hermesctl.backends.docker.volume_restore import BEFORE_SWAP, RestoreInterrupted, restore_tree
from hermesctl.core import interrupt
from hermesctl.core.errors import ContainerRunningError, ExecTimeoutError, UsageError
from hermesctl.core.parallel import Outcome, fan_out
from hermesctl.model.targets import Target, is_glob


def reason_of(exc: BaseException) -> str:
    return "timeout" if isinstance(exc, ExecTimeoutError) else "failed"


def _one_backup(inst: Instance, out_dir: Path, timeout: float) -> backup.BackupResult:
    if inst.kind == "service" and not inst.running:
        with inst.data() as data:
            facts = {"name": inst.name, "service": inst.name, "node": inst.where, "image": inst.image,
                     "running": False}
            return backup.create_backup(data.endpoint, data.ref, out_dir, describe_as=facts, timeout=timeout)
    data = inst.live_data()
    return backup.create_backup(data.endpoint, data.ref, out_dir, timeout=timeout)


def back_up(fleet: Fleet, targets: list[Target], out_dir: Path) -> list[Outcome]:
    """One archive per instance, in parallel; outcomes per instance."""
    return fan_out(lambda inst: _one_backup(inst, out_dir, fleet.exec_timeout), fleet.instances(targets))


@contextmanager
def _old_tree_if_interrupted():
    """Ctrl-C before anything was staged: said as such, and the instance is started again."""
    try:
        yield
    except KeyboardInterrupt:
        interrupt.defuse()
        raise RestoreInterrupted(BEFORE_SWAP) from None


@dataclass
class Restored:
    instance: Instance
    manifest: dict
    written: int
    restarted: bool


def restore(fleet: Fleet, archive: Path, target: Target, *, force: bool) -> Restored:
    manifest = backup.read_manifest(archive)  # verified before any instance is touched
    if target.profile is not None or is_glob(target.container):
        raise UsageError(f"{target}: restore into one instance (NAME, no glob, no :PROFILE)")
    found = fleet.instances([target])
    if len(found) > 1:
        raise UsageError(f"{target.container} names several instances (endpoints): name one as ENDPOINT/NAME")
    inst = found[0]
    was_running = inst.running
    if was_running and not force:
        what = "service" if inst.kind == "service" else "container"
        raise ContainerRunningError(f"{what} {inst.name} is running: stop it first, or pass --force to stop "
                                    "it, restore and start it again")
    try:
        with _old_tree_if_interrupted():
            if was_running:
                inst.stop()
        with inst.data() as data:
            with _old_tree_if_interrupted():
                owners = backup.owner_ids(data.endpoint, data.ref, data.image)  # its agent's answer; works stopped
            written = restore_tree(data.endpoint, data.ref, archive, data.image, owners=owners)
    finally:
        if was_running:  # restored, or (it failed) the old data: either way it runs again
            inst.start()
    return Restored(inst, manifest, written, was_running)
