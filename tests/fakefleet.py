"""A fleet without a daemon: the real Fleet and backend over the one fake Docker API
(tests/support/fake_docker.py), whose containers and agent's answers are recorded JSON (the
contract's documents, tests/fixtures/), so commands' output, exit codes and target selection are
tested in milliseconds. Only what crosses Docker is faked; every command runs as it does for real."""
import json
from pathlib import Path

from hermesctl.backends.docker.fleet import Fleet
from hermesctl.backends.docker.inventory import HermesContainer
from support.fake_docker import FakeDocker, endpoint

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def container(name: str, *, state: str = "running", status: str = "Up 5 minutes (healthy)",
              endpoint: str = "default", id: str | None = None, labels: dict | None = None) -> HermesContainer:  # noqa: A002
    return HermesContainer(endpoint=endpoint, id=id or f"{abs(hash(name)):x}"[:12].ljust(12, "0"), name=name,
                           state=state, status=status, labels=labels or {})


class FakeFleet(Fleet):
    """A plain Docker fleet of one endpoint, `default`, whose client is a FakeDocker holding
    `containers` and `answers` (see there: container name -> agent verb -> answer). `docker` is
    that fake; `calls`, `resident` and `answers` are its records, here for brevity."""

    def __init__(self, containers: list[HermesContainer], answers: dict[str, dict], **fake):
        self.docker = FakeDocker(containers, answers, **fake)
        super().__init__(endpoints=[endpoint(self.docker)])

    @property
    def answers(self) -> dict:
        return self.docker.answers

    @property
    def calls(self) -> list:
        return self.docker.calls

    @property
    def resident(self) -> list:
        return self.docker.resident


def cli_on(fleet, monkeypatch, capsys):
    """hermesctl ARGS in-process on `fleet` instead of the endpoints': a function returning
    (exit code, stdout, stderr)."""
    import pytest
    import hermesctl.cli.app as cli

    def fake(self):
        self._fleet = fleet
        self.out.unreachable = lambda: fleet.unreachable
        return fleet
    monkeypatch.setattr(cli.Run, "fleet", fake)

    def invoke(*args: str):
        with pytest.raises(SystemExit) as exit_:
            cli.main(list(args))
        captured = capsys.readouterr()
        return exit_.value.code, captured.out, captured.err
    return invoke
