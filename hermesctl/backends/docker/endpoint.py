"""A connected endpoint: what hermesctl.config.endpoints resolved (name, URL, docker CLI flags)
with the client that speaks to it. Connecting is the backends' business
(hermesctl.backends.docker.daemon.connect, unix_api.connect); no module outside backends/ holds
or reaches the client."""
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from hermesctl.config.endpoints import EXEC_CONCURRENCY

if TYPE_CHECKING:
    from hermesctl.backends.docker.daemon import Daemon


@dataclass
class Endpoint:
    name: str
    url: str
    daemon: "Daemon"  # hermesctl.backends.docker.daemon (or unix_api's): the endpoint's Docker API
    in_flight: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(EXEC_CONCURRENCY))
    cli_args: tuple[str, ...] = ()  # docker CLI global flags that reach this endpoint
    engine: str = "docker"  # whose Docker API answers: docker, podman (hermesctl.backends.docker.podman)
