"""Hermes fleets on Docker Swarm: services and tasks from a manager, execs on each task's node.

A manager knows services, tasks (service, slot, node, container id) and nodes, but cannot exec
into a container on another node: every exec goes to the node that holds the task, through that
node's own Docker endpoint, found in this order:
  1. the node label `io.hermes-agent.endpoint` (`docker node update --label-add
     io.hermes-agent.endpoint=ssh://ops@node-a NODE`),
  2. an endpoint named after the node's hostname in the fleet file (`--fleet`),
  3. `ssh://<node hostname>`.
Each node becomes one endpoint whose name is the node's hostname, so every command works as on
plain Docker. Every instance the manager wants is in every answer: a task on a node that does not
answer is `unreachable`, a task no node runs is `pending`, a service at 0 replicas `scaled-to-0`;
the first two are also in `unreachable[]` (exit 7). An instance is a one-replica service: it is
stopped by scaling it to 0, and its node-local volume reached through a never-started stand-in.
"""
import dataclasses
import fnmatch
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

from hermesctl.backends.base import PENDING, SCALED_TO_0, UNREACHABLE, DataAccess, Started
from hermesctl.backends.docker.daemon import ImageNotFound, NotFound, connect
from hermesctl.backends.docker.endpoint import Endpoint
from hermesctl.backends.docker.fleet import ContainerBackend, Fleet, Unreachable
from hermesctl.backends.docker.inventory import LABEL, SWARM_SERVICE, HermesContainer, list_containers
from hermesctl.config.endpoints import resolve
from hermesctl.config.settings import DEFAULT_EXEC_TIMEOUT
from hermesctl.core.errors import HermesctlError, NotFoundError, UsageError, describe
from hermesctl.core.parallel import fan_out
from hermesctl.model.targets import Target, is_glob

NODE_ENDPOINT_LABEL = "io.hermes-agent.endpoint"
STACK_NAMESPACE = "com.docker.stack.namespace"
STOP_WAIT_S = 60


@dataclass(frozen=True)
class SwarmTask:
    id: str
    service: str           # full service name, e.g. hermes_hermes-1
    short_service: str     # without the stack's prefix, e.g. hermes-1
    slot: int | None       # None for global services
    node: str              # node hostname ("" while pending)
    state: str             # running, starting, pending, ...
    container_id: str | None


@dataclass(frozen=True)
class SwarmServiceInfo:
    id: str
    name: str
    short: str
    replicas: int | None   # None: global


@dataclass(frozen=True)
class SwarmNode:
    id: str
    hostname: str
    state: str             # ready, down, unknown
    url: str               # where its Docker API answers
    url_from: str          # label, fleet file, default


def is_hermes_service(service: dict) -> bool:
    spec = service.get("Spec", {})
    container_labels = spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Labels") or {}
    return (spec.get("Labels") or {}).get(LABEL) == "true" or container_labels.get(LABEL) == "true"


def node_url(node: dict, fleet_endpoints: dict[str, str]) -> tuple[str, str]:
    hostname = node["Description"]["Hostname"]
    label = (node.get("Spec", {}).get("Labels") or {}).get(NODE_ENDPOINT_LABEL)
    if label:
        return label, "label"
    if hostname in fleet_endpoints:
        return fleet_endpoints[hostname], "fleet file"
    return f"ssh://{hostname}", "default"


def _short(spec: dict) -> str:
    name = spec["Name"]
    namespace = (spec.get("Labels") or {}).get(STACK_NAMESPACE)
    return name[len(namespace) + 1:] if namespace and name.startswith(namespace + "_") else name


def discover(manager: Endpoint, *, stack: str | None, fleet_endpoints: dict[str, str]
             ) -> tuple[list[SwarmNode], list[SwarmTask], list[SwarmServiceInfo]]:
    """Hermes services, their current tasks (desired state running), and the nodes they run on."""
    daemon = manager.daemon
    services = [s for s in daemon.services() if is_hermes_service(s)
                and (stack is None or (s["Spec"].get("Labels") or {}).get(STACK_NAMESPACE) == stack)]
    nodes = {n["ID"]: n for n in daemon.nodes()}
    tasks, infos = [], []
    for service in services:
        spec = service["Spec"]
        replicated = (spec.get("Mode") or {}).get("Replicated")
        infos.append(SwarmServiceInfo(service["ID"], spec["Name"], _short(spec),
                                      replicated.get("Replicas", 1) if replicated is not None else None))
        for t in daemon.tasks(filters={"service": service["ID"], "desired-state": "running"}):
            node = nodes.get(t.get("NodeID", ""))
            tasks.append(SwarmTask(id=t["ID"], service=spec["Name"], short_service=_short(spec), slot=t.get("Slot"),
                                   node=node["Description"]["Hostname"] if node else "",
                                   state=t["Status"]["State"],
                                   container_id=(t["Status"].get("ContainerStatus") or {}).get("ContainerID")))
    used = {t.node for t in tasks}
    swarm_nodes = []
    for n in nodes.values():
        hostname = n["Description"]["Hostname"]
        if hostname in used:
            url, source = node_url(n, fleet_endpoints)
            swarm_nodes.append(SwarmNode(n["ID"], hostname, n["Status"]["State"], url, source))
    return (sorted(swarm_nodes, key=lambda n: n.hostname), sorted(tasks, key=lambda t: (t.service, t.slot or 0)),
            sorted(infos, key=lambda s: s.name))


@dataclass
class ServiceInstance:
    """One Hermes swarm service (one replica: one Hermes home on its node's volume)."""
    fleet: Fleet  # its backend is a SwarmBackend
    id: str
    name: str
    node: str   # where its task (and so its volume) lives
    spec: dict  # as it was when we started: what a rollback puts back
    replicas_before: int
    kind: str = "service"

    @property
    def where(self) -> str:
        return self.node

    @property
    def image(self) -> str:
        return self.spec["TaskTemplate"]["ContainerSpec"]["Image"]

    @property
    def replicas(self) -> int | None:
        return self.spec.get("Mode", {}).get("Replicated", {}).get("Replicas")

    @property
    def running(self) -> bool:
        return bool(self.replicas_before)

    @property
    def endpoint(self) -> Endpoint:
        return self.fleet.endpoint(self.node)

    def version_of(self, image: str) -> str | None:
        from hermesctl.backends.docker.backup import VERSION_LABEL
        try:
            return (self.endpoint.daemon.inspect_image(image)["Config"].get("Labels") or {}).get(VERSION_LABEL)
        except (NotFound, ImageNotFound):
            return None

    def plan(self, image: str) -> str:
        if self.replicas not in (0, 1):
            raise UsageError(f"service {self.name} is not replicated with 1 replica: a Hermes "
                             "instance is one task on its node's volume (compose/stack.yaml)")
        try:
            self.endpoint.daemon.inspect_image(image)
        except ImageNotFound:
            raise NotFoundError(f"image {image} is not on node {self.node} "
                                "(`docker save | docker load` it there first)") from None
        if self.image == image:
            return "already on the image"
        # As a stopped container is: nothing runs to upgrade, and nothing could show it serves.
        return "skipped: scaled to 0 replicas" if not self.replicas_before else "upgrade"

    def _update(self, *, replicas: int, image: str | None = None, spec: dict | None = None) -> None:
        """Set the replica count, and the image or a whole previous task template."""
        manager = self.fleet.backend.manager.daemon
        template = (spec or manager.inspect_service(self.id)["Spec"])["TaskTemplate"]
        if image is not None:
            template = {**template, "ContainerSpec": {**template["ContainerSpec"], "Image": image}}
        manager.update_service(self.id, template=template, replicas=replicas)

    def task_ids(self) -> set[str]:
        """The service's tasks now (a later new_task_container waits for one not among them)."""
        return self._task_ids()

    def new_task_container(self, after: set[str], timeout: float) -> str:
        return self._new_task_container(after, timeout)

    def update_template(self, template: dict) -> None:
        """A new task template at the replica count the service has (one task restart)."""
        self.fleet.backend.manager.daemon.update_service(self.id, template=template, replicas=self.replicas_before)

    def _task_ids(self) -> set[str]:
        return {t["ID"] for t in self.fleet.backend.manager.daemon.tasks(filters={"service": self.id})}

    def _wait_stopped(self) -> None:
        """After a scale to 0: no container of the service runs on its node any more."""
        daemon = self.endpoint.daemon
        deadline = time.monotonic() + STOP_WAIT_S
        label = f"com.docker.swarm.service.id={self.id}"
        while time.monotonic() < deadline:
            if not any(daemon.containers({"label": [label], "status": [s]}, all=False)
                       for s in ("running", "restarting")):
                return
            time.sleep(0.3)
        raise HermesctlError(f"{self.name}: its task did not stop within {STOP_WAIT_S}s")

    def _new_task_container(self, after: set[str], timeout: float) -> str:
        """The container of a task started after `after`."""
        manager = self.fleet.backend.manager.daemon
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for t in manager.tasks(filters={"service": self.id}):
                if t["ID"] in after:
                    continue
                status = t["Status"]
                if status["State"] in ("failed", "rejected"):
                    raise HermesctlError(f"task {status['State']}: {status.get('Err') or status.get('Message')}")
                cid = (status.get("ContainerStatus") or {}).get("ContainerID")
                if cid and t.get("DesiredState") == "running":
                    return cid
            time.sleep(0.5)
        raise HermesctlError(f"no task started within {timeout:g}s")

    def stop(self) -> None:
        self._update(replicas=0)
        self._wait_stopped()

    def start(self) -> Started | None:
        """Back to the spec and replicas it had; the new task's container (none at 0 replicas)."""
        known = self._task_ids()
        self._update(replicas=self.replicas_before, spec=self.spec)
        if not self.replicas_before:
            return None
        return Started(self.endpoint, self._new_task_container(known, self.fleet.exec_timeout * 4), self.name)

    @contextmanager
    def data(self):
        """A created, never started container on the node that mounts the service's volumes:
        the stopped task's own container is removed by swarm soon after a scale-down."""
        from hermesctl.backends.docker import backup
        endpoint = self.endpoint
        container_spec = self.spec["TaskTemplate"]["ContainerSpec"]
        holder = backup.volume_holder(endpoint, self.image, container_spec.get("Mounts") or [],
                                      f"{self.name}-hermesctl-{int(time.time() * 1000) % 10**8}",
                                      environment=container_spec.get("Env"))
        try:
            yield DataAccess(endpoint, holder, self.image)
        finally:
            try:
                endpoint.daemon.remove(holder, force=True)
            except NotFound:
                pass

    def live_data(self) -> DataAccess:
        task = next((t for t in self.fleet.backend.tasks if t.service == self.name and t.container_id), None)
        if task is None:
            raise HermesctlError(f"service {self.name} has no running task")
        return DataAccess(self.endpoint, task.container_id, self.image)

    def replace(self, image: str) -> Started:
        known = self._task_ids()
        self._update(replicas=1, image=image)
        return Started(self.endpoint, self._new_task_container(known, self.fleet.exec_timeout * 4), self.name)

    def commit(self) -> None:
        """Nothing kept aside: the old spec lives in the record until the operation ends."""

    def undo(self) -> None:
        self._update(replicas=0)
        self._wait_stopped()

    def record(self) -> dict:
        return {"kind": self.kind, "service": self.name, "id": self.id, "node": self.node,
                "image": self.image, "replicas": self.replicas_before, "spec": self.spec}


@dataclass
class SwarmBackend(ContainerBackend):
    """What a swarm answers for a fleet whose endpoints are the swarm's nodes: its containers are
    Hermes tasks (and entries for instances wanted but not running), its instances services."""
    kind = "swarm"
    manager: Endpoint | None = None
    tasks: list[SwarmTask] = field(default_factory=list)
    services: list[SwarmServiceInfo] = field(default_factory=list)
    nodes: list[SwarmNode] = field(default_factory=list)
    fleet_endpoints: dict[str, str] = field(default_factory=dict)

    def containers(self, fleet: Fleet) -> list[HermesContainer]:
        """Every current task's container, and an entry for every instance the manager wants that
        has none here: pending (no node), unreachable (node does not answer), scaled-to-0."""
        wanted = {t.container_id: t for t in self.tasks if t.container_id}
        found: list[HermesContainer] = []
        answered: set[str] = set()
        for o in fan_out(list_containers, fleet.endpoints):
            if not o.ok:
                fleet.unreachable.append(Unreachable(o.item.name, describe(o.error)))
                continue
            answered.add(o.item.name)
            # Only current tasks: swarm keeps the containers of replaced tasks around.
            found.extend(c for c in o.value if c.id in wanted)
        seen = {c.id for c in found}
        for t in self.tasks:
            if t.container_id in seen:
                continue
            if not t.node:
                state, why = PENDING, f"no node runs it ({t.state})"
            elif t.node not in answered:
                state, why = UNREACHABLE, f"its node {t.node} does not answer"
            elif t.state in ("new", "pending", "assigned", "accepted", "preparing", "ready", "starting"):
                state, why = PENDING, f"task {t.state} on {t.node}"
            else:
                state, why = PENDING, f"task {t.state} on {t.node}, no container yet"
            found.append(self._placeholder(fleet, t.service, t.slot, t.node, state, why))
        with_tasks = {t.service for t in self.tasks}
        for s in self.services:
            if s.name in with_tasks:
                continue
            if s.replicas == 0:
                found.append(self._placeholder(fleet, s.name, None, "", SCALED_TO_0,
                                                "service scaled to 0 replicas"))
            else:
                found.append(self._placeholder(fleet, s.name, None, "", PENDING, "no task yet"))
        return found

    def _placeholder(self, fleet: Fleet, service: str, slot: int | None, node: str, state: str,
                     why: str) -> HermesContainer:
        name = service if slot is None else f"{service}.{slot}"
        c = HermesContainer(endpoint=node or "-", id="", name=name, state=state, status=why,
                            labels={SWARM_SERVICE: service})
        entry = Unreachable.wanted_missing(c)  # none for a service scaled to 0: nothing is missing
        if entry is not None:
            fleet.unreachable.append(entry)
        return c

    def task_of(self, container: HermesContainer) -> SwarmTask | None:
        return next((t for t in self.tasks if t.container_id == container.id), None) if container.id else None

    def _service_of(self, container: HermesContainer) -> SwarmServiceInfo | None:
        name = container.labels.get(SWARM_SERVICE)
        return next((s for s in self.services if s.name == name), None)

    def aliases(self, fleet: Fleet) -> dict[str, list[str]]:
        """SERVICE and SERVICE.SLOT (full or without the stack prefix) -> container names."""
        table: dict[str, list[str]] = {}
        for c in fleet.containers():
            task = self.task_of(c)
            info = self._service_of(c)
            if task is None and info is None:
                continue
            service, short = (task.service, task.short_service) if task else (info.name, info.short)
            slot = task.slot if task else (int(c.name.rsplit(".", 1)[1]) if c.name != service else None)
            for s in {service, short}:
                table.setdefault(s, []).append(c.name)
                if slot is not None:
                    table.setdefault(f"{s}.{slot}", []).append(c.name)
        return table

    def names_matching(self, fleet: Fleet, pattern: str) -> list[str]:
        aliases = self.aliases(fleet)
        if is_glob(pattern):
            names = {n for alias, names in aliases.items() if fnmatch.fnmatchcase(alias, pattern) for n in names}
            names |= {c.name for c in fleet.containers() if fnmatch.fnmatchcase(c.name, pattern)}
            if names:
                return sorted(names)
        elif pattern in aliases:
            return sorted(set(aliases[pattern]))
        try:
            return super().names_matching(fleet, pattern)
        except NotFoundError:
            known = ", ".join(sorted(a for a in aliases if "." not in a)) or "none"
            raise NotFoundError(f"no Hermes task matches {pattern!r} (services: {known})") from None

    def instances(self, fleet: Fleet, targets: list[Target]) -> list[ServiceInstance]:
        """The services the targets' tasks belong to (SERVICE, SERVICE.SLOT, globs), by name;
        a service at 0 replicas too (its volume's node: where its last task ran)."""
        chosen: dict[str, ServiceInstance] = {}
        for target in targets:
            if target.profile is not None:
                raise UsageError(f"{target}: name whole services (SERVICE, no :PROFILE)")
            for c in fleet.containers_matching(target):
                task = self.task_of(c)
                service = task.service if task else c.labels.get(SWARM_SERVICE)
                if service and service not in chosen:
                    chosen[service] = self.service_instance(fleet, service, task.node if task else None)
        return sorted(chosen.values(), key=lambda s: s.name)

    def scope_endpoints(self, fleet: Fleet) -> set[str]:
        """Every node of the swarm: a service at 0 replicas has no task, its node is still ours."""
        if self.manager is None:
            return super().scope_endpoints(fleet)
        return {n["Description"]["Hostname"] for n in self.manager.daemon.nodes()} | super().scope_endpoints(fleet)

    def service_instance(self, fleet: Fleet, service_name: str, node: str | None) -> ServiceInstance:
        manager = self.manager.daemon
        service = manager.inspect_service(service_name)
        if not node:
            node = self._last_node(fleet, service)
        replicas = service["Spec"].get("Mode", {}).get("Replicated", {}).get("Replicas") or 0
        self._ensure_node(fleet, node)
        return ServiceInstance(fleet, service["ID"], service["Spec"]["Name"], node, service["Spec"], replicas)

    def _last_node(self, fleet: Fleet, service: dict) -> str:
        """Where a service with no task keeps its volume: swarm forgets the tasks of a service
        scaled to 0, so ask every node which one holds the service's named volumes."""
        sources = [m["Source"] for m in service["Spec"]["TaskTemplate"]["ContainerSpec"].get("Mounts") or []
                   if m.get("Type", "volume") == "volume" and m.get("Source")]
        if not sources:
            raise HermesctlError(f"service {service['Spec']['Name']} has no named volume: nothing to reach")
        hostnames = sorted(n["Description"]["Hostname"] for n in self.manager.daemon.nodes())

        def holds(hostname: str) -> bool:
            self._ensure_node(fleet, hostname)
            try:
                fleet.endpoint(hostname).daemon.inspect_volume(sources[0])
                return True
            except NotFound:
                return False

        found = [o.item for o in fan_out(holds, hostnames) if o.ok and o.value]
        if len(found) != 1:
            raise HermesctlError(f"cannot tell which node holds volume {sources[0]} of service "
                                 f"{service['Spec']['Name']}: " + (f"{', '.join(found)} all have one" if found
                                                                   else "no node answering has it"))
        return found[0]

    def _ensure_node(self, fleet: Fleet, hostname: str) -> None:
        """Connect to a node not in use by any current task (a service at 0 replicas)."""
        if any(e.name == hostname for e in fleet.endpoints):
            return
        raw = next((n for n in self.manager.daemon.nodes() if n["Description"]["Hostname"] == hostname), None)
        if raw is None:
            raise NotFoundError(f"node {hostname} is not in the swarm")
        url, _ = node_url(raw, self.fleet_endpoints)
        manager_node = (self.manager.daemon.info().get("Swarm") or {}).get("NodeID")
        fleet.endpoints.append(dataclasses.replace(self.manager, name=hostname) if raw["ID"] == manager_node else
                              connect(dataclasses.replace(resolve(host=url), name=hostname),
                                      timeout=fleet.exec_timeout))

    def instance_from_record(self, fleet: Fleet, record: dict) -> ServiceInstance:
        instance = self.service_instance(fleet, record["service"], record["node"])
        instance.spec, instance.replicas_before = record["spec"], record["replicas"]
        return instance

    def refresh(self, fleet: Fleet) -> None:
        if self.manager is not None:  # for --watch: tasks are replaced (restarts, updates)
            _, self.tasks, self.services = discover(self.manager, stack=fleet.project,
                                                    fleet_endpoints=self.fleet_endpoints)


def build_swarm_fleet(manager_url: str, *, stack: str | None, fleet_file: str | None,
                      timeout: float = DEFAULT_EXEC_TIMEOUT) -> Fleet:
    """Connect to the manager (it must answer: exit 69 otherwise), discover the Hermes tasks,
    then connect to every node that holds one, in parallel, each within `timeout`."""
    fleet_endpoints: dict[str, str] = {}
    if fleet_file:
        from hermesctl.config.fleetfile import load_fleet_file
        for e in load_fleet_file(fleet_file).endpoints:
            fleet_endpoints[e.name] = e.url if e.url else resolve(context=e.context).url
    manager = connect(dataclasses.replace(resolve(host=manager_url), name="manager"), timeout=timeout)
    nodes, tasks, services = discover(manager, stack=stack, fleet_endpoints=fleet_endpoints)
    manager_node = (manager.daemon.info().get("Swarm") or {}).get("NodeID")
    # The manager's own node is reached through the manager's connection.
    connected = fan_out(lambda n: manager if n.id == manager_node else
                        connect(dataclasses.replace(resolve(host=n.url), name=n.hostname), timeout=timeout), nodes)
    endpoints, unreachable = [], []
    for node, o in zip(nodes, connected):
        if o.ok:
            endpoints.append(o.value if o.value is not manager else
                             dataclasses.replace(manager, name=node.hostname))
        else:
            unreachable.append(Unreachable(node.hostname, f"{node.url} ({node.url_from}): {describe(o.error)}"))
    backend = SwarmBackend(manager=manager, tasks=tasks, services=services, nodes=nodes, fleet_endpoints=fleet_endpoints)
    fleet = Fleet(endpoints=endpoints, project=stack, configured=len(nodes), exec_timeout=timeout, backend=backend)
    fleet.unreachable.extend(unreachable)
    return fleet
