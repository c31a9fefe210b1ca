"""A backend without a daemon, with faults to inject: instances whose stop, replace, health or
data steps do what a test says (an image that never turns healthy, a step that raises, an
interrupt between two steps). The engine runs unchanged on it (hermesctl.engine.*), so each
branch is proven in milliseconds; the same behaviours are proven on real containers and a real
swarm in test_upgrade.py and test_swarm.py. What the engine then watches (the started
container's inspect) is answered by the one fake Docker API (tests/support/fake_docker.py)."""
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace

from hermesctl.backends.base import DataAccess, Started
from hermesctl.backends.docker.fleet import ContainerBackend, Fleet
from support.fake_docker import FakeDocker, endpoint


def container_state(status: str = "running", health: str | None = None, *, healthcheck: bool = True,
                    restarts: int = 0, exit_code: int = 0, docker_checked: int | None = None) -> dict:
    """`docker_checked`: the exit code of Docker's own latest check (None: it has run none yet)."""
    state = {"Status": status, "Running": status == "running", "ExitCode": exit_code}
    if health is not None:
        log = [{"Output": "check failed\n", "ExitCode": 1}] if health == "unhealthy" else []
        if docker_checked is not None:
            log = [{"Output": "docker's check\n", "ExitCode": docker_checked}]
        state["Health"] = {"Status": health, "Log": log}
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
    checks: list = field(default_factory=lambda: [0])  # exit codes of the healthcheck run at once (last repeats)
    booted: bool = True                           # what the agent's boot gate answers on the new container
    gateways_up: tuple = ("coder",)               # the gateways it finds up there (the old one: all)

    def finish_stop_in_flight(self) -> None:
        """That stop ends now (it ends whatever we do meanwhile, unless we wait for it)."""
        if self.stop_in_flight:
            self.stop_in_flight, self.running = False, False

    def _step(self, step: str) -> None:
        self.log.append(step)
        if step in self.fail_at:
            raise self.fail_at[step]

    @property
    def image_id(self) -> str:
        return self.image

    def version_of(self, image: str) -> None:
        return None

    def spec(self):
        """What a dry run prints of a container's settings."""
        return SimpleNamespace(summary=lambda: {"volumes": [f"{self.name}-data->/opt/data"], "networks": ["none"],
                                                "ports": [], "restart": "no", "healthcheck": "image's"})

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
        return Started(endpoint(FakeDocker(states={"old": self.old_states}), self.where), "old", self.name)

    @contextmanager
    def data(self):
        self._step("data")
        yield DataAccess(SimpleNamespace(name=self.where), "holder", self.image)

    def live_data(self) -> DataAccess:
        return DataAccess(SimpleNamespace(name=self.where), "live", self.image)

    def replace(self, image: str) -> Started:
        self._step("replace")
        self.replaced_by = image
        return Started(endpoint(FakeDocker(states={"new": self.new_states}), self.where), "new", self.name)

    def commit(self) -> None:
        self._step("commit")
        self.image = self.replaced_by

    def undo(self) -> None:
        self._step("undo")
        self.replaced_by = None

    def record(self) -> dict:
        return {"kind": self.kind, "name": self.name, "endpoint": self.where, "image": self.image,
                "running": self.running}


class FakeInstances(ContainerBackend):
    """A backend whose whole instances are the test's FakeInstances (and no container to list)."""

    def __init__(self, instances: list[FakeInstance], kind: str, runs_healthchecks: bool):
        self._instances, self.kind, self.runs_healthchecks = instances, kind, runs_healthchecks

    def containers(self, fleet):
        return []

    def instances(self, fleet, targets):
        return list(self._instances)

    def instance_from_record(self, fleet, record: dict) -> FakeInstance:
        return next(i for i in self._instances if i.name == record["name"])


class FakeBackend(Fleet):
    """A fleet holding that backend, as the engine is given one; what the health gate asks of
    the new container (the healthcheck run at once, the agent's boot gate) answers from the
    instance's script."""

    def __init__(self, instances: list[FakeInstance], kind: str = "docker", runs_healthchecks: bool = True):
        super().__init__(endpoints=[], backend=FakeInstances(instances, kind, runs_healthchecks))
        self._instances = instances
        self.ran: list[tuple[str, list[str]]] = []   # (instance, argv) of every exec

    def _named(self, name: str) -> FakeInstance:
        return next(i for i in self._instances if i.name == name)

    def run(self, container, argv, **kwargs):
        """The healthcheck run at once: its exit code from the instance's script."""
        self.ran.append((container.name, list(argv)))
        inst = self._named(container.name)
        code = inst.checks.pop(0) if len(inst.checks) > 1 else inst.checks[0]
        return SimpleNamespace(ok=code == 0, exit_code=code, stdout='{"healthy": false}\n' if code else "", stderr="")

    def probe(self, container):
        """The agent's boot gate, as the instance's script says (the old container: booted, all up)."""
        inst = self._named(container.name)
        new = container.id == "new"
        up = inst.gateways_up if new else ("coder",)
        return SimpleNamespace(booted=inst.booted or not new, slots={
            name: SimpleNamespace(status=SimpleNamespace(up=True, pid=1)) for name in up})


def fake_data_steps(monkeypatch, manifest: dict, put_back=lambda data, made: []) -> list:
    """upgrade's backup and rollback without a daemon: each backup a placeholder file (named by
    its container and thread, so batches side by side never share one) whose manifest is
    `manifest`, and `put_back` for the rollback's restore. Returns the refs backed up, in order."""
    import threading
    from pathlib import Path

    from hermesctl.backends.docker import backup
    from hermesctl.engine import upgrade as engine
    made: list = []

    def create_backup(endpoint, ref, out_dir, **kwargs):
        path = Path(out_dir) / f"backup-{ref}-{threading.get_ident()}.tar.gz"
        path.write_text("x")
        made.append(ref)
        return backup.BackupResult(path, manifest, "0" * 64)
    monkeypatch.setattr(engine.backup, "create_backup", create_backup)
    monkeypatch.setattr(engine.backup, "read_manifest", lambda path: manifest)
    monkeypatch.setattr(engine, "put_back", put_back)
    return made
