"""Ctrl-C: exit 130 within a second, without a traceback, whatever the program is doing.

Python's default handler raises KeyboardInterrupt, which is not enough on its own: it can land
in the middle of an import (traceback), and the interpreter's exit joins worker threads that may
be blocked on a container that does not answer. So the first SIGINT raises KeyboardInterrupt (so
`logs -f` can stop its remote tails) and arms a short fuse; the second SIGINT, or the fuse, ends
the process at once with os._exit, after flushing what was already printed.

Stdlib only and imported first, before typer, rich and the Docker SDK.
"""
import os
import queue
import signal
import sys
import threading
import time

INTERRUPTED = 130
FUSE_S = 0.8  # the cleanup a KeyboardInterrupt allows, before the hard exit

_armed = False
_fuse: threading.Timer | None = None
_shield: "Shield | None" = None


FLUSH_S = 0.5  # what flushing may take: a full pipe nobody reads must not hold the exit


def hard_exit(status: int = INTERRUPTED) -> None:
    """Flush what was printed and leave now: no atexit, no joining of blocked threads."""
    def flush() -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:  # noqa: BLE001 - a closed pipe must not stop the exit
                pass
    flusher = threading.Thread(target=flush, daemon=True)
    flusher.start()
    flusher.join(FLUSH_S)
    os._exit(status)


def _on_sigint(signum, frame) -> None:
    global _armed, _fuse
    if _armed:
        hard_exit()
    _armed = True
    if _shield is not None:  # a step that must not be cut: say so, and let it finish
        _shield.hit = True
        print(f"hermesctl: {_shield.notice}", file=sys.stderr, flush=True)
        return
    _fuse = threading.Timer(FUSE_S, hard_exit)
    _fuse.daemon = True
    _fuse.start()
    raise KeyboardInterrupt


def defuse() -> None:
    """A KeyboardInterrupt was caught by code that must now finish a short cleanup and say what
    it left (a restore): no fuse cuts it. A second Ctrl-C still exits at once."""
    if _fuse is not None:
        _fuse.cancel()


class Shield:
    def __init__(self, notice: str):
        self.notice, self.hit = notice, False


class shielded:
    """`with shielded(notice) as s:` a Ctrl-C inside prints `notice` and does not interrupt the
    block (a step that, once begun, must end: a restore's swap); afterwards `s.hit` says whether
    one came. A second Ctrl-C exits at once, as anywhere."""

    def __init__(self, notice: str):
        self.shield = Shield(notice)

    def __enter__(self) -> Shield:
        global _shield
        self.previous, _shield = _shield, self.shield
        return self.shield

    def __exit__(self, *exc) -> None:
        global _shield
        _shield = self.previous


def _on_unraisable(unraisable) -> None:
    """A KeyboardInterrupt raised where Python cannot propagate it (a weakref callback of the
    import machinery, a __del__) is swallowed and printed as "Exception ignored in ...". The
    user's Ctrl-C was still meant: leave now, silently, instead of waiting for the fuse."""
    if issubclass(unraisable.exc_type, KeyboardInterrupt):
        hard_exit()
    sys.__unraisablehook__(unraisable)


def install() -> None:
    """Take over SIGINT (only in the main thread, as signal requires), then let it in: the
    `hermesctl` launcher (bin/hermesctl) starts us with SIGINT blocked, so a Ctrl-C during the
    interpreter's start-up is pending now and lands here, raising KeyboardInterrupt."""
    if threading.current_thread() is threading.main_thread():
        sys.unraisablehook = _on_unraisable
        signal.signal(signal.SIGINT, _on_sigint)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])


def came_from_ctrl_c(exc: BaseException) -> bool:
    """Whether an exception is a Ctrl-C in disguise: Python wraps a KeyboardInterrupt raised in
    some hooks (a dataclass field's __set_name__ while a module is imported, for one) in a
    RuntimeError whose cause it is. Such an exit is an interrupt (130), not a failure."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


# A SIGINT the kernel gives to another thread than the main one (any thread may take it) only
# flags it: the main thread, blocked in a wait with no end (a lock, a sleep), would not run the
# handler until that wait ends, maybe never. The main thread's long waits therefore wake this often.
WAKE_S = 0.25


def next_item(items: "queue.Queue"):
    """items.get(), in the main thread: a Ctrl-C is acted on within WAKE_S whichever thread took it."""
    while True:
        try:
            return items.get(timeout=WAKE_S)
        except queue.Empty:
            continue


def wait_forever() -> None:
    """Until Ctrl-C (or the process is ended), acted on within WAKE_S."""
    while True:
        time.sleep(WAKE_S)
