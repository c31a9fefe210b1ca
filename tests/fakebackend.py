"""A backend without a daemon, with faults to inject: instances whose stop, replace, health or
data steps do what a test says (an image that never turns healthy, a step that raises, an
interrupt between two steps), and a swarm manager whose nodes are down, hung or fine. The engine
runs unchanged on it (hermesctl.engine.*), so each branch is proven in milliseconds; the same
behaviours are proven on real containers and a real swarm in test_upgrade.py and test_swarm.py."""
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

from hermesctl.backends.base import DataAccess, Started
from hermesctl.backends.docker.fleet import Fleet


class FakeDaemon:
    """inspect_container answers from a script: a list of states, the last one repeated."""

    def __init__(self, states: list[dict]):
        self.states = list(states)

    def inspect_container(self, ref: str) -> dict:
        state = self.states.pop(0) if len(self.states) > 1 else self.states[0]
        if isinstance(state, BaseException):
            raise state
        return state


def container_state(status: str = "running", health: str | None = None, *, healthcheck: bool = True,
                    restarts: int = 0, exit_code: int = 0) -> dict:
    state = {"Status": status, "Running": status == "running", "ExitCode": exit_code}
    if health is not None:
        state["Health"] = {"Status": health, "Log": [{"Output": "check failed\n"}] if health == "unhealthy" else []}
    return {"State": state, "RestartCount": restarts,
            "Config": {"Healthcheck": {"Test": ["CMD", "/opt/hermes/docker/healthcheck.sh"]} if healthcheck else None}}


class Interrupt(KeyboardInterrupt):
    """Ctrl-C at a chosen step."""


@dataclass
class FakeInstance:
    name: str
    image: str = "hermes-agent:old"
    where: str = "node-1"
    kind: str = "container"
    running: bool = True
    new_states: list = field(default_factory=lambda: [container_state("running", "healthy")])
    old_states: list = field(default_factory=lambda: [container_state("running", "healthy")])
    fail_at: dict = field(default_factory=dict)   # step -> exception to raise there
    log: list = field(default_factory=list)       # the steps, in order
    replaced_by: str | None = None
    stop_in_flight: bool = False                  # Docker still carries out a stop a killed run asked for

    def finish_stop_in_flight(self) -> None:
        """That stop ends now (it ends whatever we do meanwhile, unless we wait for it)."""
        if self.stop_in_flight:
            self.stop_in_flight, self.running = False, False

    def _step(self, step: str) -> None:
        self.log.append(step)
        if step in self.fail_at:
            raise self.fail_at[step]

    def plan(self, image: str) -> str:
        return "already on the image" if image == self.image else "upgrade"

    def stop(self) -> None:
        self._step("stop")
        self.stop_in_flight = False  # a second stop waits for the first
        self.running = False

    def start(self) -> Started:
        self._step("start")
        if not self.stop_in_flight:  # starting a container that is still stopping does nothing
            self.running = True
        return Started(SimpleNamespace(name=self.where, daemon=FakeDaemon(self.old_states)), "old", self.name)

    @contextmanager
    def data(self):
        self._step("data")
        yield DataAccess(SimpleNamespace(name=self.where), "holder", self.image)

    def live_data(self) -> DataAccess:
        return DataAccess(SimpleNamespace(name=self.where), "live", self.image)

    def replace(self, image: str) -> Started:
        self._step("replace")
        self.replaced_by = image
        return Started(SimpleNamespace(name=self.where, daemon=FakeDaemon(self.new_states)), "new", self.name)

    def commit(self) -> None:
        self._step("commit")
        self.image = self.replaced_by

    def undo(self) -> None:
        self._step("undo")
        self.replaced_by = None

    def record(self) -> dict:
        return {"kind": self.kind, "name": self.name, "endpoint": self.where, "image": self.image,
                "running": self.running}


class FakeBackend(Fleet):
    def __init__(self, instances: list[FakeInstance], kind: str = "docker"):
        super().__init__(endpoints=[], backend=SimpleNamespace(kind=kind))
        self._instances = instances

    def instances(self, targets):
        return list(self._instances)

    def instance_from_record(self, record: dict) -> FakeInstance:
        return next(i for i in self._instances if i.name == record["name"])

    def containers(self):
        return []
