"""Ctrl-C: exit 130 within a second, without a traceback, whatever the program is doing.

Python's default handler raises KeyboardInterrupt, which is not enough on its own: it can land
in the middle of an import (traceback), and the interpreter's exit joins worker threads that may
be blocked on a container that does not answer. So the first SIGINT raises KeyboardInterrupt (so
`logs -f` can stop its remote tails) and arms a short fuse; the second SIGINT, or the fuse, ends
the process at once with os._exit, after flushing what was already printed.

Stdlib only and imported first, before typer, rich and the Docker SDK.
"""
import os
import signal
import sys
import threading

INTERRUPTED = 130
FUSE_S = 0.8  # the cleanup a KeyboardInterrupt allows, before the hard exit

_armed = False


def hard_exit(status: int = INTERRUPTED) -> None:
    """Flush what was printed and leave now: no atexit, no joining of blocked threads."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed pipe must not stop the exit
            pass
    os._exit(status)


def _on_sigint(signum, frame) -> None:
    global _armed
    if _armed:
        hard_exit()
    _armed = True
    fuse = threading.Timer(FUSE_S, hard_exit)
    fuse.daemon = True
    fuse.start()
    raise KeyboardInterrupt


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
