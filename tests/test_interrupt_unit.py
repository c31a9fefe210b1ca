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
