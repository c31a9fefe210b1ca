"""Finding Hermes containers on an endpoint.

A Hermes container is one whose image (or compose file) sets the label
`io.hermes-agent.managed=true`; our Dockerfile sets it, so every container of the image has it.
"""
import re
from dataclasses import dataclass, field

from hermesctl.backends.docker.endpoint import Endpoint

LABEL = "io.hermes-agent.managed"
COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
WORKING_DIR = "com.docker.compose.project.working_dir"
SWARM_SERVICE = "com.docker.swarm.service.name"
# States of an instance the orchestrator wants but that has no container answering here
# (hermesctl.backends.base); a HermesContainer in one of them has no id.
PENDING = "pending"            # wanted, no node runs it now
UNREACHABLE = "unreachable"    # its node (endpoint) does not answer
SCALED_TO_0 = "scaled-to-0"    # its service asks for 0 replicas
UNANSWERED_STATES = (PENDING, UNREACHABLE)


@dataclass(frozen=True)
class HermesContainer:
    endpoint: str
    id: str
    name: str
    state: str        # running, exited, paused, restarting, created, dead
    status: str       # docker's human text: "Up 3 minutes (healthy)"
    labels: dict = field(default_factory=dict, compare=False, hash=False)
    volumes: tuple[str, ...] = ()  # volume names / host paths mounted at /opt/data
    engine: str = field(default="docker", compare=False)  # its endpoint's: docker, podman

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def health(self) -> str | None:
        m = re.search(r"\((healthy|unhealthy|health: starting)\)", self.status)
        return None if not m else ("starting" if m.group(1) == "health: starting" else m.group(1))

    @property
    def exit_code(self) -> int | None:
        m = re.match(r"Exited \((\d+)\)", self.status)
        return int(m.group(1)) if m else None

    @property
    def compose_project(self) -> str | None:
        return self.labels.get(COMPOSE_PROJECT)

    @property
    def compose_service(self) -> str | None:
        return self.labels.get(COMPOSE_SERVICE)

    @property
    def service(self) -> str | None:
        """The compose or swarm service the container belongs to."""
        return self.labels.get(COMPOSE_SERVICE) or self.labels.get(SWARM_SERVICE)

    @property
    def key(self) -> str:
        """Unique across endpoints."""
        return f"{self.endpoint}/{self.name}"


def _data_mounts(raw: dict) -> tuple[str, ...]:
    return tuple(m.get("Name") or m.get("Source", "") for m in raw.get("Mounts", [])
                 if m.get("Destination") == "/opt/data")


def list_containers(endpoint: Endpoint, *, project: str | None = None,
                    project_dir: str | None = None) -> list[HermesContainer]:
    """Every Hermes container (running or not) on `endpoint`, optionally one compose project's
    (or those compose started from `project_dir`)."""
    filters = {"label": [f"{LABEL}=true"]}
    if project:
        filters["label"].append(f"{COMPOSE_PROJECT}={project}")
    elif project_dir:
        filters["label"].append(f"{WORKING_DIR}={project_dir}")
    raw = endpoint.daemon.containers(filters)
    return sorted(
        (HermesContainer(
            endpoint=endpoint.name,
            id=c["Id"],
            name=c["Names"][0].lstrip("/"),
            state=c.get("State", ""),
            status=c.get("Status", ""),
            labels=c.get("Labels") or {},
            volumes=_data_mounts(c),
            engine=endpoint.engine,
        ) for c in raw),
        key=lambda c: c.name,
    )
