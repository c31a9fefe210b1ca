"""A fleet without a daemon: containers and the agent's answers are recorded JSON (the contract's
documents, tests/fixtures/), so commands' output, exit codes and target selection are tested in
milliseconds. Only what crosses Docker is faked; every command runs as it does for real."""
import json
from pathlib import Path

from hermesctl.agent.contract import AGENT, AGENT_QUERY_SOCKET, QUERY_ENV
from hermesctl.backends.docker.execs import ExecResult
from hermesctl.backends.docker.fleet import BOUNDED_STATUS_ARGV
from hermesctl.backends.docker.fleet import Fleet
from hermesctl.backends.docker.inventory import HermesContainer

FIXTURES = Path(__file__).parent / "fixtures"


def recorded(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def container(name: str, *, state: str = "running", status: str = "Up 5 minutes (healthy)") -> HermesContainer:
    return HermesContainer(endpoint="default", id=f"{abs(hash(name)):x}"[:12].ljust(12, "0"), name=name,
                           state=state, status=status)


class FakeFleet(Fleet):
    """answers: container name -> agent verb -> a document (exit 0), (exit code, document), an
    ExecResult as it is, or an exception to raise (a timeout, a container that went away).
    `VERB@resident`: what the resident agent's query socket answers instead, once."""

    def __init__(self, containers: list[HermesContainer], answers: dict[str, dict]):
        super().__init__(endpoints=[])
        self._containers = containers
        self.answers = answers
        self.calls: list[tuple[str, list[str]]] = []  # the agent's argv each exec asked for
        self.resident: list[str] = []  # containers asked through the resident agent's query socket

    def containers(self) -> list[HermesContainer]:
        return self._containers

    def run(self, container: HermesContainer, argv: list[str], **kwargs) -> ExecResult:
        resident = argv[:2] == ["/command/s6-ipcclient", AGENT_QUERY_SOCKET]
        if resident:  # the same question, for the resident agent
            argv = [AGENT, *json.loads(kwargs["environment"][QUERY_ENV])]
            self.resident.append(container.name)
        self.calls.append((container.name, argv))
        if argv == list(BOUNDED_STATUS_ARGV):  # the resident agent's status: the same document
            argv = [AGENT, "status"]
        if argv[0] != AGENT:
            raise AssertionError(f"the host ran something other than the agent: {argv}")
        mine = self.answers.get(container.name, {})
        answer = mine.get(argv[1])
        if resident and f"{argv[1]}@resident" in mine:
            answer = mine.pop(f"{argv[1]}@resident")  # the resident agent's own answer, once
        if isinstance(answer, ExecResult):
            return answer
        if answer is None:
            raise AssertionError(f"no recorded answer for {container.name}: {argv[1:]}")
        if isinstance(answer, Exception):
            raise answer
        code, doc = answer if isinstance(answer, tuple) else (0, answer)
        return ExecResult(code, json.dumps(doc), "")


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
