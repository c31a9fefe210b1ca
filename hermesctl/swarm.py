"""Hermes fleets on Docker Swarm: services and tasks from a manager, execs on each task's node.

A manager knows services, tasks (service, slot, node, container id) and nodes, but cannot exec
into a container on another node: every exec goes to the node that holds the task, through that
node's own Docker endpoint, found in this order:
  1. the node label `io.hermes-agent.endpoint` (`docker node update --label-add
     io.hermes-agent.endpoint=ssh://ops@node-a NODE`),
  2. an endpoint named after the node's hostname in the fleet file (`--fleet`),
  3. `ssh://<node hostname>`.
Each node becomes one endpoint of an ordinary Fleet whose name is the node's hostname, so every
command (ps, gateway, profile, logs, doctor, apply, backup) works unchanged; a node that does not
answer is reported and the rest still answers (exit 7).
"""
import dataclasses
import fnmatch
from dataclasses import dataclass, field

from hermesctl.endpoints import Endpoint, connect, resolve
from hermesctl.errors import NotFoundError, describe
from hermesctl.fleet import Fleet, Unreachable
from hermesctl.inventory import LABEL, HermesContainer, list_containers
from hermesctl.parallel import fan_out
from hermesctl.targets import is_glob

NODE_ENDPOINT_LABEL = "io.hermes-agent.endpoint"
STACK_NAMESPACE = "com.docker.stack.namespace"


@dataclass(frozen=True)
class SwarmTask:
    id: str
    service: str           # full service name, e.g. hermes_hermes-1
    short_service: str     # without the stack's prefix, e.g. hermes-1
    slot: int | None       # None for global services
    node: str              # node hostname
    state: str             # running, starting, pending, ...
    container_id: str | None


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


def discover(manager: Endpoint, *, stack: str | None, fleet_endpoints: dict[str, str]
             ) -> tuple[list[SwarmNode], list[SwarmTask]]:
    """Hermes services' current tasks (desired state running), and the nodes they run on."""
    api = manager.client.api
    services = [s for s in api.services() if is_hermes_service(s)
                and (stack is None or (s["Spec"].get("Labels") or {}).get(STACK_NAMESPACE) == stack)]
    nodes = {n["ID"]: n for n in api.nodes()}
    tasks = []
    for service in services:
        name = service["Spec"]["Name"]
        namespace = (service["Spec"].get("Labels") or {}).get(STACK_NAMESPACE)
        short = name[len(namespace) + 1:] if namespace and name.startswith(namespace + "_") else name
        for t in api.tasks(filters={"service": service["ID"], "desired-state": "running"}):
            node = nodes.get(t.get("NodeID", ""))
            tasks.append(SwarmTask(id=t["ID"], service=name, short_service=short, slot=t.get("Slot"),
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
    return sorted(swarm_nodes, key=lambda n: n.hostname), sorted(tasks, key=lambda t: (t.service, t.slot or 0))


@dataclass
class SwarmFleet(Fleet):
    """A Fleet whose endpoints are the swarm's nodes and whose containers are Hermes tasks."""
    manager: Endpoint | None = None
    tasks: list[SwarmTask] = field(default_factory=list)
    fleet_endpoints: dict[str, str] = field(default_factory=dict)

    def containers(self) -> list[HermesContainer]:
        if self._containers is None:
            wanted = {t.container_id: t for t in self.tasks if t.container_id}
            found: list[HermesContainer] = []
            for o in fan_out(list_containers, self.endpoints):
                if not o.ok:
                    self.unreachable.append(Unreachable(o.item.name, describe(o.error)))
                    continue
                # Only current tasks: swarm keeps the containers of replaced tasks around.
                found.extend(c for c in o.value if c.id in wanted)
            self._containers = found
        return self._containers

    def task_of(self, container: HermesContainer) -> SwarmTask | None:
        return next((t for t in self.tasks if t.container_id == container.id), None)

    def aliases(self) -> dict[str, list[str]]:
        """SERVICE and SERVICE.SLOT (full or without the stack prefix) -> container names."""
        table: dict[str, list[str]] = {}
        for c in self.containers():
            task = self.task_of(c)
            if task is None:
                continue
            for service in {task.service, task.short_service}:
                table.setdefault(service, []).append(c.name)
                if task.slot is not None:
                    table.setdefault(f"{service}.{task.slot}", []).append(c.name)
        return table

    def names_matching(self, pattern: str) -> list[str]:
        aliases = self.aliases()
        if is_glob(pattern):
            names = {n for alias, names in aliases.items() if fnmatch.fnmatchcase(alias, pattern) for n in names}
            names |= {c.name for c in self.containers() if fnmatch.fnmatchcase(c.name, pattern)}
            if names:
                return sorted(names)
        elif pattern in aliases:
            return sorted(set(aliases[pattern]))
        try:
            return super().names_matching(pattern)
        except NotFoundError:
            known = ", ".join(sorted(a for a in aliases if "." not in a)) or "none"
            raise NotFoundError(f"no Hermes task matches {pattern!r} (services: {known})") from None

    def refresh(self) -> None:
        super().refresh()
        if self.manager is not None:  # for --watch: tasks are replaced (restarts, updates)
            self.tasks = discover(self.manager, stack=self.project, fleet_endpoints=self.fleet_endpoints)[1]


def build_swarm_fleet(manager_url: str, *, stack: str | None, fleet_file: str | None) -> SwarmFleet:
    """Connect to the manager (it must answer: exit 69 otherwise), discover the Hermes tasks,
    then connect to every node that holds one, in parallel."""
    fleet_endpoints: dict[str, str] = {}
    if fleet_file:
        from hermesctl.fleetfile import load_fleet_file
        for e in load_fleet_file(fleet_file).endpoints:
            fleet_endpoints[e.name] = e.url if e.url else resolve(context=e.context).url
    manager = connect(dataclasses.replace(resolve(host=manager_url), name="manager"))
    nodes, tasks = discover(manager, stack=stack, fleet_endpoints=fleet_endpoints)
    manager_node = (manager.client.api.info().get("Swarm") or {}).get("NodeID")
    # The manager's own node is reached through the manager's connection.
    connected = fan_out(lambda n: manager if n.id == manager_node else
                        connect(dataclasses.replace(resolve(host=n.url), name=n.hostname)), nodes)
    endpoints, unreachable = [], []
    for node, o in zip(nodes, connected):
        if o.ok:
            endpoints.append(o.value if o.value is not manager else
                             dataclasses.replace(manager, name=node.hostname))
        else:
            unreachable.append(Unreachable(node.hostname, f"{node.url} ({node.url_from}): {describe(o.error)}"))
    fleet = SwarmFleet(endpoints=endpoints, project=stack, configured=len(nodes), manager=manager, tasks=tasks,
                       fleet_endpoints=fleet_endpoints)
    fleet.unreachable.extend(unreachable)
    return fleet
