"""Plain Docker (and compose): Hermes containers on one or more daemons, each an instance.

Endpoints come from --host, --context, a fleet file, or the environment; every connection is
bounded by --timeout (hermesctl.backends.docker.daemon.connect)."""
from contextlib import contextmanager
from dataclasses import dataclass

from hermesctl.backends.base import DataAccess, Started
from hermesctl.backends.docker import recreate
from hermesctl.backends.docker.daemon import ImageNotFound, NotFound, connect
from hermesctl.backends.docker.endpoint import Endpoint
from hermesctl.backends.docker.fleet import ContainerBackend, Fleet, Unreachable
from hermesctl.backends.docker.inventory import COMPOSE_PROJECT, WORKING_DIR, HermesContainer
from hermesctl.backends.docker.podman import dialect
from hermesctl.config import compose
from hermesctl.config.endpoints import Resolved, resolve
from hermesctl.config.settings import DEFAULT_EXEC_TIMEOUT
from hermesctl.core.errors import ContainerStoppedError, NotFoundError, UsageError, describe
from hermesctl.core.parallel import fan_out
from hermesctl.model.targets import Target

OLD_SUFFIX = "-pre-upgrade"
STOP_TIMEOUT = 15  # seconds docker stop waits, as compose's stop_grace_period


@dataclass
class ContainerInstance:
    """One Hermes container as a whole. `replace` keeps the old container aside under
    NAME-pre-upgrade until `commit` removes it or `undo` gives it its name back."""
    endpoint: Endpoint
    container: HermesContainer
    inspect: dict
    image_config: dict | None
    new_id: str | None = None
    kind: str = "container"
    compose_note: str = ""  # why compose's labels could not follow the new image (compose.coherent_labels)

    @property
    def name(self) -> str:
        return self.container.name

    @property
    def where(self) -> str:
        return self.container.endpoint

    @property
    def id(self) -> str:
        return self.inspect["Id"]

    @property
    def image(self) -> str:
        return self.inspect["Config"]["Image"]

    @property
    def image_id(self) -> str:
        return self.inspect["Image"]

    @property
    def running(self) -> bool:
        return bool(self.inspect["State"]["Running"])

    def version_of(self, image: str) -> str | None:
        from hermesctl.backends.docker.backup import VERSION_LABEL
        try:
            return (self.endpoint.daemon.inspect_image(image)["Config"].get("Labels") or {}).get(VERSION_LABEL)
        except (NotFound, ImageNotFound):
            return None

    def spec(self) -> recreate.ContainerSpec:
        # Read as Docker reports it: the engine's own dialect translated (backends.podman).
        return recreate.spec_from_inspect(dialect(self.endpoint).creation_inspect(self.inspect), self.image_config)

    def plan(self, image: str) -> str:
        """What upgrading to `image` means here; a UsageError when it cannot be done."""
        daemon = self.endpoint.daemon
        try:
            new_id = daemon.inspect_image(image)["Id"]
        except ImageNotFound:
            raise NotFoundError(f"image {image} is not on endpoint {self.where} "
                                "(build, pull or `docker load` it there first)") from None
        if self.inspect["HostConfig"].get("AutoRemove"):
            raise UsageError(f"{self.name} was started with --rm: stopping it would delete it, so it "
                             "cannot be upgraded in place (recreate it without --rm)")
        if self.name.endswith(OLD_SUFFIX):
            raise UsageError(f"{self.name} is the old container of an interrupted upgrade: "
                             "run `hermesctl upgrade --recover`")
        try:
            daemon.inspect_container(self.name + OLD_SUFFIX)
            raise UsageError(f"{self.name + OLD_SUFFIX} exists (an interrupted upgrade): "
                             "run `hermesctl upgrade --recover`")
        except NotFound:
            pass
        # Same image under the same name: nothing to do. Same id under a new name still moves
        # the container to the new name, which is what compose and operators read.
        names = dialect(self.endpoint).image_name
        if self.image_id == new_id and names(self.image) == names(image):
            return "already on the image"
        if not self.running:
            return "skipped: not running"
        return "upgrade"

    def stop(self) -> None:
        self.endpoint.daemon.stop(self.id, timeout=self.inspect["Config"].get("StopTimeout") or STOP_TIMEOUT)

    def start(self) -> Started:
        self.endpoint.daemon.start(self.id)
        return Started(self.endpoint, self.id, self.name)

    @contextmanager
    def data(self):
        yield DataAccess(self.endpoint, self.id, self.image_id)

    def live_data(self) -> DataAccess:
        return DataAccess(self.endpoint, self.id, self.image_id)

    def replace(self, image: str) -> Started:
        daemon = self.endpoint.daemon
        spec = self.spec()
        if spec.config.get("Labels", {}).get(compose.CONFIG_HASH):
            # A compose container keeps agreeing with its project once that names the image.
            labels, self.compose_note = compose.coherent_labels(
                self.inspect["Config"].get("Labels") or {}, self.image_id, image, daemon.inspect_image(image)["Id"])
            spec.config["Labels"].update(labels)
        daemon.rename(self.id, self.name + OLD_SUFFIX)
        self.new_id = recreate.create(daemon, spec, image)
        daemon.start(self.new_id)
        return Started(self.endpoint, self.new_id, self.name)

    def commit(self) -> None:
        self.endpoint.daemon.remove(self.id)

    def undo(self) -> None:
        """Remove the new container (also one an interrupted run created but never recorded:
        whatever holds the name while the old one is set aside) and give the old its name back."""
        daemon = self.endpoint.daemon
        if daemon.inspect_container(self.id)["Name"].lstrip("/") != self.name:
            try:
                holder = daemon.inspect_container(self.name)["Id"]
            except NotFound:
                holder = None
            for new in {self.new_id, holder} - {None, self.id}:
                try:
                    daemon.stop(new, timeout=5)
                    daemon.remove(new, force=True)
                except NotFound:
                    pass
            daemon.rename(self.id, self.name)
        self.new_id = None

    def record(self) -> dict:
        # Its compose project (and the directory compose ran in): a later `ps --project X` or
        # `ps` in a compose directory shows only its own records (journal.in_scope).
        labels = self.container.labels
        return {"kind": self.kind, "endpoint": self.where, "name": self.name, "id": self.id,
                "image": self.image, "new_id": self.new_id, "running": self.running,
                "compose_project": labels.get(COMPOSE_PROJECT), "compose_working_dir": labels.get(WORKING_DIR)}


class DockerBackend(ContainerBackend):
    """Plain Docker with whole instances: each Hermes container is one (stop, replace, undo)."""
    kind = "docker"

    def instances(self, fleet: Fleet, targets: list[Target]) -> list[ContainerInstance]:
        """Every container the targets name, running or stopped, as a whole (no :PROFILE)."""
        chosen: dict[str, HermesContainer] = {}
        for target in targets:
            if target.profile is not None:
                raise UsageError(f"{target}: name whole containers (CONTAINER, no :PROFILE)")
            for c in fleet.containers_matching(target):
                chosen.setdefault(c.key, c)
        return [self._instance(fleet.endpoint(c.endpoint), c) for c in sorted(chosen.values(), key=lambda c: c.key)]

    @staticmethod
    def _instance(endpoint: Endpoint, c: HermesContainer) -> ContainerInstance:
        inspect = endpoint.daemon.inspect_container(c.id)
        try:
            image_config = endpoint.daemon.inspect_image(inspect["Image"])["Config"]
        except ImageNotFound:
            image_config = None  # its image was deleted: keep every setting as it is
        return ContainerInstance(endpoint, c, inspect, image_config)

    def instance_from_record(self, fleet: Fleet, record: dict) -> ContainerInstance:
        """The instance an interrupted operation left, found again by its container id."""
        try:
            endpoint = fleet.endpoint(record["endpoint"])
        except StopIteration:
            raise ContainerStoppedError(f"endpoint {record['endpoint']} is not in this run's endpoints") from None
        inspect = endpoint.daemon.inspect_container(record["id"])
        c = HermesContainer(endpoint=endpoint.name, id=inspect["Id"], name=record["name"],
                            state=inspect["State"]["Status"], status="", engine=endpoint.engine)
        try:
            image_config = endpoint.daemon.inspect_image(inspect["Image"])["Config"]
        except ImageNotFound:
            image_config = None
        return ContainerInstance(endpoint, c, inspect, image_config, new_id=record.get("new_id"))


def build_fleet(hosts: list[str], contexts: list[str], *, project: str | None,
                fleet_file: str | None, timeout: float = DEFAULT_EXEC_TIMEOUT,
                engine: str | None = None) -> Fleet:
    """The Hermes containers on these endpoints, each spoken to in its engine's dialect: Docker
    or Podman (`engine`, --engine, else each endpoint's own answer: hermesctl.backends.docker.podman)."""
    specs = [resolve(host=h) for h in hosts] + [resolve(context=c) for c in contexts]
    if fleet_file:
        from hermesctl.config.fleetfile import load_fleet_file
        for e in load_fleet_file(fleet_file).endpoints:
            r = resolve(host=e.url) if e.url else resolve(context=e.context)
            specs.append(Resolved(e.name, r.url, r.tls, r.cli_args))
    if not specs:
        specs = [resolve()]
    # Same URL named twice (a context and its URL) is one endpoint.
    unique = list({spec.url: spec for spec in specs}.values())
    connected = fan_out(lambda spec: connect(spec, timeout=timeout, engine=engine), unique)
    for o in connected:
        if not o.ok and isinstance(o.error, UsageError):
            raise o.error  # --engine names the other engine than the endpoint's: nothing is done
    endpoints: list[Endpoint] = [o.value for o in connected if o.ok]
    failures = [o for o in connected if not o.ok]
    if not endpoints:
        raise failures[0].error  # connect() raises DaemonUnreachableError; nothing answered at all
    fleet = Fleet(endpoints=endpoints, project=project, configured=len(unique), exec_timeout=timeout,
                  backend=DockerBackend())
    for o in failures:
        fleet.unreachable.append(Unreachable(o.item.name, describe(o.error)))
    return fleet
