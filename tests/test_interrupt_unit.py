"""A Ctrl-C that Python hands over wrapped in another exception is still an interrupt (130)."""
import dataclasses

import pytest

from hermesctl.cli import app as cli_app
from hermesctl.core.interrupt import came_from_ctrl_c


def _wrapped_ctrl_c() -> RuntimeError:
    # What Python does with a KeyboardInterrupt raised in a descriptor's __set_name__ while a
    # dataclass is made (a module being imported when the Ctrl-C came): a RuntimeError over it.
    class Interrupting:
        def __set_name__(self, owner, name):
            raise KeyboardInterrupt

    try:
        type("Made", (), {"field": Interrupting()})
    except RuntimeError as exc:
        return exc
    raise AssertionError("Python no longer wraps it: came_from_ctrl_c may go")


def test_a_wrapped_ctrl_c_is_told_from_a_failure():
    exc = _wrapped_ctrl_c()
    assert isinstance(exc.__cause__ or exc.__context__, KeyboardInterrupt)
    assert came_from_ctrl_c(exc) and came_from_ctrl_c(KeyboardInterrupt())
    assert not came_from_ctrl_c(RuntimeError("a real failure")) and not came_from_ctrl_c(dataclasses.FrozenInstanceError())


def test_the_cli_exits_130_silently_on_a_wrapped_ctrl_c(monkeypatch, capsys):
    def interrupted(**kwargs):
        raise _wrapped_ctrl_c()
    monkeypatch.setattr(cli_app, "app", interrupted)
    with pytest.raises(SystemExit) as exited:
        cli_app.main(["ps"])
    assert exited.value.code == 130
    assert capsys.readouterr().err == ""


def test_a_ctrl_c_another_thread_took_still_ends_a_main_thread_wait():
    # Any thread may take a SIGINT; the main thread blocked in a wait with no end would then never
    # run the handler (events, logs -f and serve once hung on Ctrl-C under load). Here a thread that
    # lets SIGINT in while the main thread blocks it stands in for the kernel's choice.
    import subprocess
    import sys
    script = r"""
import os, queue, signal, sys, threading, time
from hermesctl.core import interrupt
interrupt.install()
def take_it():
    signal.pthread_sigmask(signal.SIG_UNBLOCK, [signal.SIGINT])
    time.sleep(60)
threading.Thread(target=take_it, daemon=True).start()
signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGINT])   # the kernel must give it to the thread
threading.Timer(0.3, lambda: os.kill(os.getpid(), signal.SIGINT)).start()
try:
    interrupt.next_item(queue.Queue())
except KeyboardInterrupt:
    interrupt.hard_exit()
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=20)
    assert done.returncode == 130, done.stderr
