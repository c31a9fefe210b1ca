# Runs as root: hermesctl restore's helper containers, and at every boot (hermes-boot).
"""Runs as root (a restore helper container, and cont-init at every boot). Puts a staged tree in
place of a data volume's contents, so that no moment leaves a half volume for good.

A volume's root is a mount point and cannot be renamed, so the swap is several renames; a journal
makes every moment recoverable. The host stages the new tree (docker put_archive) in
  HOME/.hermesctl-restore/new/     and nothing else is written until it is complete.
Then `swap` syncs, writes the journal and runs the phases; `finish` (every restore, every boot)
resumes whatever a killed swap left:
  no journal        the staging never completed: remove the workspace (the old data stays)
  evacuate          move HOME's entries (but the workspace and `keep`) into the workspace's old/
  install           move new/'s entries into HOME (a `keep` name HOME still has stays HOME's)
  cleanup           give HOME new/'s mode and owner, remove the workspace
Each phase is idempotent and the journal moves on only once a phase is done, so a kill -9 at
any step ends, after `finish`, in exactly the old tree (before the journal) or the new one.

HOME is hermes-writable: every name in it is hostile. Everything here works relative to
directory descriptors opened with O_NOFOLLOW, renames entries without following them, and
removes trees with shutil.rmtree's descriptor-based walk (it never follows a symlink).
"""
import fcntl
import json
import os
import shutil
import stat
import sys
import time

WORKSPACE = ".hermesctl-restore"
JOURNAL = "journal"
NEW, OLD = "new", "old"
PHASES = ("evacuate", "install", "cleanup")
JOURNAL_MAX = 4096
# The host's last staged entry: {"entries": N}, how many entries new/ holds (hermesctl.restore).
STAGED = "staged"
# One swap at a time per volume: every finish and swap holds an exclusive flock on the volume's
# root directory (it cannot be renamed or replaced: it is the mount point), shared by the restore
# helper and the boot, whichever container runs them, since they share the kernel.
LOCK_WAIT_ENV = "HERMES_RESTORE_LOCK_WAIT"
LOCK_WAIT_S = 600.0
# shutil.rmtree recurses once per directory level, and hermes can nest deeper than Python's
# default limit; its frames are Python-only (no C stack), so a higher limit is safe.
RECURSION_LIMIT = 100_000
# Fault injection for the crash tests: before the Nth step (1-based), say so on stderr and wait
# to be killed (from outside: in a helper container this is PID 1, which ignores its own SIGKILL).
# With PAUSE_FOR_ENV too, it waits that many seconds and goes on (a slow swap, for the tests of
# what runs beside one).
PAUSE_AT_ENV = "HERMES_RESTORE_PAUSE_AT"
PAUSE_FOR_ENV = "HERMES_RESTORE_PAUSE_FOR"
PAUSED = "restore-swap: paused before step"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class RestoreError(Exception):
    """A workspace that is not what a restore leaves (refused, nothing touched)."""


class _Steps:
    """Counts the steps that change the volume; with PAUSE_AT_ENV set, stops before that one."""

    def __init__(self) -> None:
        value = os.environ.get(PAUSE_AT_ENV, "")
        self.pause_at = int(value) if value.isdigit() else 0
        value = os.environ.get(PAUSE_FOR_ENV, "")
        self.pause_for = float(value) if value.isdigit() else None
        self.done = 0

    def __call__(self) -> None:
        if self.done + 1 == self.pause_at:
            print(f"{PAUSED} {self.pause_at}", file=sys.stderr, flush=True)
            if self.pause_for is not None:
                time.sleep(self.pause_for)
            else:
                while True:
                    time.sleep(60)
        self.done += 1


def _open_dir(name: str, dir_fd: int) -> int:
    return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)


def _exists(name: str, dir_fd: int) -> bool:
    try:
        os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        return True
    except FileNotFoundError:
        return False


def _read_small_json(ws: int, name: str, what: str) -> object:
    """A small JSON file of the workspace (root's, but never followed or read unbounded): its
    value, None when it is missing, or RestoreError when it is not a regular file."""
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=ws)
    except FileNotFoundError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise RestoreError(f"the {what} is not a regular file")
        raw = os.read(fd, JOURNAL_MAX + 1)
    finally:
        os.close(fd)
    try:
        return json.loads(raw) if len(raw) <= JOURNAL_MAX else False
    except ValueError:
        return False  # present, but not a small JSON document


def _read_journal(ws: int) -> dict | None:
    doc = _read_small_json(ws, JOURNAL, "restore journal")
    if doc is None:
        return None
    if not isinstance(doc, dict) or doc.get("phase") not in PHASES or not isinstance(doc.get("keep"), list) \
            or not all(isinstance(k, str) and k and "/" not in k for k in doc["keep"]):
        raise RestoreError("the restore journal is damaged")
    return doc


def _write_journal(ws: int, doc: dict, step: _Steps) -> None:
    """Atomically: a reader sees the previous phase or this one, never a torn file."""
    step()
    tmp = JOURNAL + ".tmp"
    try:
        os.unlink(tmp, dir_fd=ws)
    except FileNotFoundError:
        pass
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=ws)
    try:
        os.write(fd, json.dumps(doc).encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, JOURNAL, src_dir_fd=ws, dst_dir_fd=ws)
    os.fsync(ws)


def _entries(dir_fd: int) -> list[str]:
    return sorted(os.listdir(dir_fd))


def _evacuate(home: int, ws: int, keep: set[str], step: _Steps) -> None:
    if not _exists(OLD, ws):
        step()
        os.mkdir(OLD, 0o700, dir_fd=ws)
    old = _open_dir(OLD, ws)
    try:
        for name in _entries(home):
            if name == WORKSPACE or name in keep:
                continue
            step()
            os.rename(name, name, src_dir_fd=home, dst_dir_fd=old)
        os.fsync(old)
    finally:
        os.close(old)
    os.fsync(home)


def _install(home: int, ws: int, keep: set[str], step: _Steps) -> None:
    new = _open_dir(NEW, ws)
    try:
        for name in _entries(new):
            if name == WORKSPACE or (name in keep and _exists(name, home)):
                continue  # the kept one stays; new/'s copy goes with the workspace
            step()
            os.rename(name, name, src_dir_fd=new, dst_dir_fd=home)
        os.fsync(home)
    finally:
        os.close(new)


def _remove_tree(name: str, dir_fd: int) -> None:
    """rm -rf through directory descriptors, never following a symlink (shutil.rmtree's
    fd-based walk), however deep hermes nested it."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
    try:
        shutil.rmtree(name, dir_fd=dir_fd)
    finally:
        sys.setrecursionlimit(limit)


def _lock(home_fd: int) -> None:
    """Wait (bounded) for the volume's swap lock; released when home_fd is closed."""
    value = os.environ.get(LOCK_WAIT_ENV, "")
    wait = float(value) if value.replace(".", "", 1).isdigit() else LOCK_WAIT_S
    deadline = time.monotonic() + wait
    while True:
        try:
            fcntl.flock(home_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise RestoreError(f"another restore has held this volume's lock for {wait:g}s") from None
            time.sleep(0.1)


def _staged_entries(ws: int) -> int:
    """The staging's own count (its last entry), or an error if it never completed."""
    doc = _read_small_json(ws, STAGED, "staged marker")
    if doc is None:
        raise RestoreError("the staging did not complete (no staged marker)")
    entries = doc.get("entries") if isinstance(doc, dict) else None
    if not isinstance(entries, int) or isinstance(entries, bool) or entries < 0:
        raise RestoreError("the staged marker is damaged")
    return entries


def _count_entries(new: int) -> int:
    """Every name under new/, at any depth, never following a symlink."""
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, RECURSION_LIMIT))
    try:
        return sum(len(dirs) + len(files) for _, dirs, files, _ in os.fwalk(".", dir_fd=new))
    finally:
        sys.setrecursionlimit(limit)


def _cleanup(home: int, ws: int, step: _Steps) -> None:
    try:
        new = _open_dir(NEW, ws)
    except FileNotFoundError:
        new = None
    if new is not None:
        try:
            st = os.fstat(new)
            step()
            os.fchown(home, st.st_uid, st.st_gid)
            os.fchmod(home, stat.S_IMODE(st.st_mode) & ~(stat.S_ISUID | stat.S_ISGID))
        finally:
            os.close(new)
    step()
    _remove_tree(WORKSPACE, home)


def _resume(home: int, ws: int, doc: dict, step: _Steps) -> str:
    keep = set(doc["keep"])
    phase = doc["phase"]
    if phase == "evacuate":
        _evacuate(home, ws, keep, step)
        phase = "install"
        _write_journal(ws, {**doc, "phase": phase}, step)
    if phase == "install":
        _install(home, ws, keep, step)
        _write_journal(ws, {**doc, "phase": "cleanup"}, step)
    _cleanup(home, ws, step)
    return "installed"


def _open_home(home: str) -> int:
    return os.open(home, _DIR_FLAGS)


def finish(home: str) -> str:
    """Bring HOME to a whole tree: `none` (no restore was under way), `discarded` (staging had not
    completed: the old tree stays) or `installed` (a started swap was completed)."""
    step = _Steps()
    try:
        home_fd = _open_home(home)
    except FileNotFoundError:
        return "none"  # a HERMES_HOME not created yet holds no restore
    try:
        _lock(home_fd)
        try:
            st = os.stat(WORKSPACE, dir_fd=home_fd, follow_symlinks=False)
        except FileNotFoundError:
            return "none"
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            # Not ours (a restore's workspace is root's): never read or enter it; clear the name.
            step()
            if stat.S_ISDIR(st.st_mode):
                _remove_tree(WORKSPACE, home_fd)
            else:
                os.unlink(WORKSPACE, dir_fd=home_fd)
            return "discarded"
        ws = _open_dir(WORKSPACE, home_fd)
        try:
            doc = _read_journal(ws)
            if doc is None:
                step()
                _remove_tree(WORKSPACE, home_fd)
                return "discarded"
            return _resume(home_fd, ws, doc, step)
        finally:
            os.close(ws)
    finally:
        os.close(home_fd)


def swap(home: str, keep: list[str]) -> dict:
    """Install the staged HOME/.hermesctl-restore/new/ in place of HOME's entries (but `keep`)."""
    step = _Steps()
    home_fd = _open_home(home)
    try:
        _lock(home_fd)
        st = os.stat(WORKSPACE, dir_fd=home_fd, follow_symlinks=False)
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
            raise RestoreError("the restore workspace is not a directory of ours (root's)")
        ws = _open_dir(WORKSPACE, home_fd)
        try:
            if _read_journal(ws) is not None:
                raise RestoreError("a restore is already under way here (finish it first)")
            expected = _staged_entries(ws)
            new = _open_dir(NEW, ws)
            try:
                staged, found = len(os.listdir(new)), _count_entries(new)
            finally:
                os.close(new)
            if found != expected:
                raise RestoreError(f"the staging holds {found} entries where {expected} were staged "
                                   "(changed since: refused)")
            os.sync()  # the staged tree is on disk before the journal says it may be installed
            doc = {"phase": "evacuate", "keep": sorted(keep)}
            _write_journal(ws, doc, step)
            _resume(home_fd, ws, doc, step)
        finally:
            os.close(ws)
    finally:
        os.close(home_fd)
    return {"installed": staged, "steps": step.done}


def main(argv: list[str]) -> int:
    """restore-finish HOME | restore-swap HOME [KEEP...]: one JSON line on stdout."""
    import sys
    try:
        if len(argv) >= 2 and argv[0] == "restore-finish":
            print(json.dumps({"result": finish(argv[1])}))
            return 0
        if len(argv) >= 2 and argv[0] == "restore-swap":
            print(json.dumps(swap(argv[1], argv[2:])))
            return 0
    except (RestoreError, OSError) as exc:
        print(f"restore: {exc}", file=sys.stderr)
        return 1
    print("usage: hermes-boot restore-finish HOME | restore-swap HOME [KEEP...]", file=sys.stderr)
    return 2
