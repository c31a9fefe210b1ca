# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""`watch`: the container's changes as JSON lines, as they happen, until stdout closes.

The first line is the whole status (`"event": "snapshot"`); after it, one line per change:
`slot` (a slot's s6 status, deaths, gateway_state.json, operation records or `down` file
changed: the slot's new facts), `slot-added`, `slot-removed`, `boot` (stage 2 finished) and
`processes` (the gateway processes, for orphans), `unslotted` (the profiles without a slot,
looked at with the processes and whenever a slot comes or goes), and `heartbeat` when nothing else was said for
WATCH_HEARTBEAT_S, so a host that went away ends us at the next write (EPIPE) where the stream
is a plain pipe. Through Docker a write never fails (dockerd keeps reading the exec's stdout), so
the host also holds our stdin open (contract.LIFELINE_OPTION): its end of file ends us at once.

What wakes us: inotify (through ctypes; no Python package) on the scan directory, every slot and
its supervise/, every profile directory and the operation records; a change is then found by
comparing fingerprints (status bytes, stat of the other files), so a spurious wake-up prints
nothing. Without inotify (or as a safety net for a missed watch) we compare every
WATCH_INTERVAL_S (or RESCAN_S with inotify).
"""
import os
import select
import sys
import time

from . import contract as C
from .fastjson import dumps
from .s6state import read_small, supervised
from .snapshot import gateway_processes, home, profile_path, slot, slot_names, slot_path, status, unslotted

RESCAN_S = 0.5
# IN_MODIFY | IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE | IN_DELETE_SELF |
# IN_MOVE_SELF. Not IN_OPEN/IN_ACCESS/IN_CLOSE_*: our own reads (and our probe of the control
# FIFO) must not wake us.
WATCH_MASK = 0x2 | 0x4 | 0x40 | 0x80 | 0x100 | 0x200 | 0x400 | 0x800


class Inotify:
    """Just enough inotify: a non-blocking fd, and watches added by path (idempotent)."""

    def __init__(self):
        import ctypes
        self._libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self._libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1")
        self._watched: set[str] = set()

    def watch(self, path: str) -> None:
        if path not in self._watched and self._libc.inotify_add_watch(self.fd, path.encode(), WATCH_MASK) >= 0:
            self._watched.add(path)

    def forget(self, prefix: str) -> None:
        """Paths that went away: the kernel dropped their watches; watch them again if they return."""
        self._watched = {p for p in self._watched if not p.startswith(prefix)}

    def drain(self) -> None:
        try:
            while os.read(self.fd, 65536):
                pass
        except BlockingIOError:
            pass


def _stat_key(path: str) -> tuple | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_ino, st.st_size, st.st_mtime_ns)


def fingerprint(profile: str) -> tuple:
    """Everything a slot's answer depends on, except the passing of time."""
    service = slot_path(profile)
    return (read_small(service + "/supervise/status"), supervised(service), os.path.exists(service + "/down"),
            _stat_key(service + "/supervise/death_tally"),
            _stat_key(f"{profile_path(profile)}/{C.STATE_FILE}"),
            _stat_key(f"{home()}/{C.CONTROL_DIR}/{C.OPERATIONS_DIR}/{profile}"))


class Watcher:
    def __init__(self, write, clock=time.time):
        self.write, self.clock = write, clock
        self.prints: dict[str, tuple] = {}
        self.booted = False
        self.processes: list | None = None
        self.unslotted: list = []
        self.last_write = 0.0

    def emit(self, event: str, **body) -> None:
        self.write(dumps({"schema": C.SCHEMA, "event": event, "now": round(self.clock(), 3), **body}))
        self.last_write = time.monotonic()

    def start(self) -> None:
        first = status()
        self.prints = {p: fingerprint(p) for p in first["slots"]}
        self.booted, self.processes, self.unslotted = first["booted"], first["processes"], first["unslotted"]
        self.write(dumps({**first, "event": "snapshot"}))
        self.last_write = time.monotonic()

    def compare(self) -> None:
        """Print what changed since the last look."""
        now = self.clock()
        names = slot_names()
        came_or_went = set(names) != set(self.prints)
        for gone in sorted(set(self.prints) - set(names)):
            del self.prints[gone]
            self.emit("slot-removed", profile=gone)
        for p in names:
            new = fingerprint(p)
            old = self.prints.get(p)
            if new != old:
                self.prints[p] = new
                self.emit("slot-added" if old is None else "slot", profile=p, slot=slot(p, now))
        if came_or_went:  # a slot registered (or removed): its profile leaves (or joins) unslotted
            self.check_unslotted(names)
        booted = os.path.exists(C.BOOTED_MARKER)
        if booted != self.booted:
            self.booted = booted
            self.emit("boot", booted=booted)

    def scan_processes(self) -> None:
        found = gateway_processes()
        if found != self.processes:
            self.processes = found
            self.emit("processes", processes=found)
        self.check_unslotted(slot_names())

    def check_unslotted(self, names: list[str]) -> None:
        found = unslotted(set(names))
        if found != self.unslotted:
            self.unslotted = found
            self.emit("unslotted", unslotted=found)

    def watched_paths(self) -> list[str]:
        paths = [C.SCANDIR, os.path.dirname(C.BOOTED_MARKER), f"{home()}/{C.CONTROL_DIR}/{C.OPERATIONS_DIR}"]
        for p in self.prints:
            paths += [slot_path(p), slot_path(p) + "/supervise", profile_path(p)]
        return paths


def _stdin_closed() -> bool:
    """Read what is there (the host never writes; anything is discarded): True at end of file."""
    try:
        return os.read(0, 4096) == b""
    except BlockingIOError:
        return False
    except OSError:
        return True


def run(interval: float = C.WATCH_INTERVAL_S, heartbeat: float = C.WATCH_HEARTBEAT_S,
        process_scan: float = C.PROCESS_SCAN_S, lifeline: bool = False) -> int:
    def write(line: str) -> None:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()

    watcher = Watcher(write)
    try:
        watcher.start()
        try:
            notify = Inotify()
        except (OSError, AttributeError):
            notify = None
        next_scan = time.monotonic() + process_scan
        stdin = [0] if lifeline else []
        while True:
            if notify:
                for path in watcher.watched_paths():
                    notify.watch(path)
                ready, _, _ = select.select([notify.fd, *stdin], [], [], min(RESCAN_S, heartbeat))
                if notify.fd in ready:
                    notify.drain()
                    for gone in set(watcher.prints) - set(slot_names()):
                        notify.forget(slot_path(gone))
            elif stdin:
                ready, _, _ = select.select(stdin, [], [], interval)
            else:
                ready = []
                time.sleep(interval)
            if 0 in ready and _stdin_closed():
                os._exit(0)  # the host is gone: nobody reads what we would print
            watcher.compare()
            if time.monotonic() >= next_scan:
                watcher.scan_processes()
                next_scan = time.monotonic() + process_scan
            if time.monotonic() - watcher.last_write >= heartbeat:
                watcher.emit("heartbeat")
    except BrokenPipeError:
        # The host closed the stream: leave quietly (stdout is gone, so no flush at exit either).
        os._exit(0)
