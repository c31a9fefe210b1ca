# Runs as root: the boot's repair (hermes-boot root); the hermes agent imports it too, for `facts`' dry run.
"""Ownership repair of the data volume, run as root at every boot (and by `doctor --fix`).

Everything under HERMES_HOME is writable by hermes, and hermes runs whatever the agent's shell
tools run: to root, every name in it is hostile. So the repair
- touches only what the image owns: HERMES_HOME itself, an allowlist of top-level state files,
  and the standard directories below (recursively). A host file dropped at the top of a bind
  mount stays as it is;
- walks with file descriptors (os.fwalk) and changes owners relative to the directory it has
  open, without following symlinks: replacing a directory by a symlink mid-walk leads nowhere;
- never re-owns a symlink (it is reported), a hard-linked file (it may be someone else's file
  under another name), or anything on another filesystem;
- treats a failed chown (no CAP_CHOWN: rootless Podman, hardened hosts) as a warning.
Names are handled as bytes end to end: a newline in a name is just another byte.
"""
import os
import stat
import sys
from dataclasses import dataclass, field

# Top-level files hermes-agent keeps its state in (upstream's list, plus config and logs seeds).
STATE_FILES = (
    "auth.json", "auth.lock", ".env", "config.yaml", "SOUL.md", "state.db", "state.db-shm",
    "state.db-wal", "hermes_state.db", "response_store.db", "response_store.db-shm",
    "response_store.db-wal", "gateway.pid", "gateway.lock", "gateway_state.json",
    "processes.json", "active_profile", ".gateway-planned-stop.json",
)
# Directories that are entirely hermes-agent's, repaired recursively.
STATE_DIRS = (
    "profiles", "cron", "sessions", "logs", "hooks", "memories", "skills", "skins", "plans",
    "workspace", "home", "pairing", "platforms", "lazy-packages", "backups", "image_cache",
    "audio_cache", "document_cache", ".hermesctl",
)


@dataclass
class Report:
    changed: int = 0
    refused: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    misowned: list[str] = field(default_factory=list)


def _shown(path: bytes) -> str:
    """A path for a log line: never more than one line, whatever bytes the name holds."""
    return repr(os.fsdecode(path))[1:-1]


class Repair:
    def __init__(self, home: str, uid: int, gid: int, *, dry_run: bool = False):
        self.home = os.fsencode(home)
        self.uid, self.gid = uid, gid
        self.dry_run = dry_run
        self.report = Report()
        self.device = os.stat(self.home, follow_symlinks=False).st_dev

    def _fix(self, name: bytes, st: os.stat_result, dir_fd: int | None, shown: bytes) -> None:
        if st.st_uid == self.uid and st.st_gid == self.gid:
            return
        if st.st_dev != self.device:
            return
        if stat.S_ISLNK(st.st_mode):
            self.report.refused.append(f"symlink {_shown(shown)}")
            return
        if stat.S_ISREG(st.st_mode) and st.st_nlink > 1:
            self.report.refused.append(f"hard-linked file {_shown(shown)} ({st.st_nlink} links)")
            return
        self.report.misowned.append(_shown(shown))
        if self.dry_run:
            return
        try:
            os.chown(name, self.uid, self.gid, dir_fd=dir_fd, follow_symlinks=False)
            self.report.changed += 1
        except OSError as exc:
            self.report.failed.append(f"{_shown(shown)}: {exc.strerror}")

    def _tree(self, home_fd: int, top: bytes) -> None:
        try:
            st = os.stat(top, dir_fd=home_fd, follow_symlinks=False)
        except FileNotFoundError:
            return
        self._fix(top, st, home_fd, self.home + b"/" + top)
        if not stat.S_ISDIR(st.st_mode):
            return
        # fwalk opens every directory itself (O_NOFOLLOW semantics: a symlinked directory is
        # listed, never entered) and hands us its descriptor.
        for dirpath, dirnames, filenames, dir_fd in os.fwalk(top, dir_fd=home_fd, follow_symlinks=False):
            base = self.home + b"/" + dirpath
            for name in dirnames + filenames:
                try:
                    entry = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                self._fix(name, entry, dir_fd, base + b"/" + name)
            # Do not descend into other filesystems (a bind mount below profiles/, say).
            dirnames[:] = [d for d in dirnames
                           if _same_device(d, dir_fd, self.device)]

    def run(self) -> Report:
        home_fd = os.open(self.home, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        try:
            self._fix(self.home, os.fstat(home_fd), None, self.home)
            for name in STATE_FILES:
                try:
                    st = os.stat(name, dir_fd=home_fd, follow_symlinks=False)
                except FileNotFoundError:
                    continue
                self._fix(os.fsencode(name), st, home_fd, self.home + b"/" + os.fsencode(name))
            for name in STATE_DIRS:
                self._tree(home_fd, os.fsencode(name))
        finally:
            os.close(home_fd)
        return self.report


def _same_device(name: bytes, dir_fd: int, device: int) -> bool:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_dev == device
    except OSError:
        return False


def repair(home: str, uid: int, gid: int, *, dry_run: bool = False) -> Report:
    if os.path.islink(home):
        return Report(refused=[f"symlink {home}"])
    return Repair(home, uid, gid, dry_run=dry_run).run()


def log_report(report: Report, warn, info) -> None:
    """One warning per refusal and failure (capped), one summary line."""
    for line in report.refused[:20]:
        warn(f"ownership: refusing to re-own {line}; fix it by hand")
    for line in report.failed[:20]:
        warn(f"ownership: warning: cannot re-own {line} (no CAP_CHOWN?); continuing")
    more = len(report.refused[20:]) + len(report.failed[20:])
    if more > 0:
        warn(f"ownership: ... and {more} more")
    if report.changed:
        info(f"ownership: re-owned {report.changed} path(s) to hermes")


if __name__ == "__main__":  # pragma: no cover - manual use
    r = repair(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), dry_run=True)
    print(r)
