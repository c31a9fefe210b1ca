# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""snapshot-databases DIR (as hermes): consistent copies of every SQLite database under DIR, for
hermesctl backup. Each is copied with SQLite's online backup API into a fresh staging directory,
printed as {"staging": dir, "databases": [relative paths], "skipped": [...]}.

Everything under DIR is hermes' to rearrange, so nothing here may wait on it: a candidate is
opened O_NONBLOCK|O_NOFOLLOW and must be a regular file starting with SQLite's magic (a FIFO
named x.db is skipped, not read), directories are walked without following symlinks, and the
host runs the verb under a deadline anyway. SIGTERM (the deadline) removes the staging directory.
"""
import os
import signal
import stat
import sys
import tempfile

MAGIC = b"SQLite format 3\x00"
STAGING_PREFIX = "hermesctl-backup-"
BUSY_TIMEOUT_S = 10
SQLITE_BUSY, SQLITE_LOCKED = 5, 6


def _is_database(name: str, dir_fd: int) -> bool:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, dir_fd=dir_fd)
    except OSError:
        return False  # a socket, a dangling or looping symlink, unreadable
    try:
        return stat.S_ISREG(os.fstat(fd).st_mode) and os.read(fd, len(MAGIC)) == MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


def _copy(sqlite3, src: str, dst: str) -> None:
    """Connection.backup retries a locked source in C for ever (no busy timeout, no signal
    check); its progress callback is Python, so it is where a lock held too long ends the copy
    and where the deadline's SIGTERM gets handled."""
    import time
    give_up = time.monotonic() + BUSY_TIMEOUT_S

    def progress(status, remaining, total):
        if status in (SQLITE_BUSY, SQLITE_LOCKED) and time.monotonic() > give_up:
            raise sqlite3.OperationalError(f"database is locked (waited {BUSY_TIMEOUT_S}s)")
        if status in (SQLITE_BUSY, SQLITE_LOCKED):
            time.sleep(0.05)

    source = sqlite3.connect(src, timeout=0)  # no busy wait in C: progress() waits
    try:
        target = sqlite3.connect(dst)
        try:
            with target:
                source.backup(target, progress=progress, sleep=0.001)
        finally:
            target.close()
    finally:
        source.close()


def snapshot(root: str) -> dict:
    import shutil
    import sqlite3
    stage = tempfile.mkdtemp(prefix=STAGING_PREFIX, dir="/tmp")

    def on_deadline(signum, frame):  # the host's deadline: leave no staging behind
        raise SystemExit(124)

    signal.signal(signal.SIGTERM, on_deadline)
    done, skipped = [], []
    try:
        for top, dirs, files, dir_fd in os.fwalk(root, follow_symlinks=False):
            dirs.sort()
            for name in sorted(files):
                if not name.endswith(".db") or not _is_database(name, dir_fd):
                    continue
                rel = os.path.relpath(os.path.join(top, name), root)
                dst = os.path.join(stage, rel)
                try:
                    os.makedirs(os.path.dirname(dst), mode=0o700, exist_ok=True)
                    _copy(sqlite3, os.path.join(top, name), dst)
                    done.append(rel)
                except (OSError, sqlite3.Error) as exc:
                    skipped.append({"path": rel, "reason": str(exc)})
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    return {"staging": stage, "databases": done, "skipped": skipped}


def main(argv: list[str]) -> dict:
    if len(argv) != 1 or not os.path.isabs(argv[0]):
        raise ValueError("snapshot-databases needs one absolute directory")
    return snapshot(argv[0])


if __name__ == "__main__":  # pragma: no cover - manual use
    print(main(sys.argv[1:]))
