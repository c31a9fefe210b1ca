"""The seam between hermesctl's engine and an orchestrator.

A backend answers what the engine needs and nothing more:
  - the instances the orchestrator wants, every one of them: running containers, and those it
    wants but that have no answering container (`pending` with no node, `unreachable` with a node
    that does not answer, `scaled-to-0`, `stopped`) — `Backend.containers(fleet)`; an instance that could
    not be answered for is also in `unreachable[]`, so the exit code says so (7);
  - an exec in an instance's container (`run`), so the agent can be asked (`ask`, `probe`) and a
    locked step run (hermesctl.engine.lifecycle.run_locked);
  - one instance as a whole (`instance(target)` → `Instance`): stop and start it, replace it with
    another image and undo that, and reach its data volume while nothing runs on it (a stand-in
    container), for backup, restore and upgrade.

A fleet (hermesctl.backends.docker.fleet.Fleet: endpoints, scope, target selection, probes)
holds a backend and asks it. `DockerBackend` (hermesctl.backends.docker.backend: containers on one
or more daemons, plain or compose) and `SwarmBackend` (hermesctl.backends.swarm.backend: services'
tasks, execs on their nodes) implement it; docs/kubernetes.md says what a third would map to.
Only backends touch the Docker SDK or an endpoint's client (tests/test_import_graph.py).
"""
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from hermesctl.backends.docker.endpoint import Endpoint

from hermesctl.backends.docker.inventory import PENDING, SCALED_TO_0, UNANSWERED_STATES, UNREACHABLE  # noqa: F401 - the seam's words


@dataclass(frozen=True)
class DataAccess:
    """Where an instance's /opt/data can be read and written while it does not run: a container
    (the instance's own, stopped, or a never-started stand-in) on an endpoint, and the image to
    run helpers from."""
    endpoint: Endpoint
    ref: str
    image: str


@dataclass(frozen=True)
class Started:
    """A container the orchestrator started for an instance, to be watched until it serves."""
    endpoint: Endpoint
    ref: str
    name: str

    def inspect(self) -> dict:
        """The orchestrator's description of the container now (Docker's inspect: State,
        RestartCount, Config.Healthcheck), read again on every call."""
        return self.endpoint.daemon.inspect_container(self.ref)


@runtime_checkable
class Instance(Protocol):
    """One Hermes instance as a whole: a container, or a one-replica swarm service."""
    name: str
    where: str                 # endpoint or node
    kind: str                  # container, service

    @property
    def image(self) -> str: ...

    @property
    def running(self) -> bool: ...

    def stop(self) -> None:
        """Nothing of the instance runs afterwards (a container stopped, a service scaled to 0)."""

    def start(self) -> "Started | None":
        """The instance runs again as it did before `stop` (same replicas); what to watch."""

    def data(self) -> AbstractContextManager[DataAccess]:
        """Its data volume, while stopped."""

    def live_data(self) -> DataAccess:
        """Its data volume through its running container (a backup of a live instance)."""

    def replace(self, image: str) -> Started:
        """Run the instance on `image` (the old one kept aside until `commit` or `undo`)."""

    def commit(self) -> None:
        """The new image serves: forget the old container."""

    def undo(self) -> None:
        """Drop what `replace` started and stop; `start` then runs the old image again."""

    def record(self) -> dict:
        """What an interrupted operation needs to finish or undo it (a JSON object)."""


class Backend(Protocol):
    """What a fleet (hermesctl.backends.docker.fleet.Fleet) asks of the orchestrator it holds.
    Every method takes that fleet: its endpoints, compose scope and `unreachable[]` are the
    fleet's; selection, probing and the agent's questions are the fleet's too, the same code
    whatever the backend. Implemented by ContainerBackend (plain Docker, listing and execs),
    DockerBackend (plus whole containers) and SwarmBackend (services' tasks on nodes)."""
    kind: str  # docker, swarm

    def containers(self, fleet) -> list:
        """Every instance wanted, running or not (hermesctl.backends.docker.inventory.HermesContainer)."""
    def run(self, fleet, container, argv: list[str], **kwargs): ...
    def exec_stream(self, fleet, container, argv: list[str], *, stderr: bool, stdin: bool): ...
    def inspect(self, fleet, container) -> dict: ...
    def names_matching(self, fleet, pattern: str) -> list[str]: ...
    def scope_endpoints(self, fleet) -> set[str]: ...
    def refresh(self, fleet) -> None: ...
    def instances(self, fleet, targets) -> list[Instance]: ...
    def instance_from_record(self, fleet, record: dict) -> Instance: ...
