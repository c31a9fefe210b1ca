"""Running argv lists inside containers through the Docker API, as the hermes user by default.

Never a shell string built from input: callers pass argv lists; the only shell scripts we run are
constants, with user values passed as positional arguments.
"""
from dataclasses import dataclass

import docker.errors
import requests.exceptions

from hermesctl.endpoints import Endpoint
from hermesctl.errors import ContainerStoppedError, DaemonUnreachableError, NotFoundError
from hermesctl.inventory import HermesContainer

HERMES_USER = "hermes"


@dataclass(frozen=True)
class ExecResult:
    exit_code: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run(endpoint: Endpoint, container: HermesContainer, argv: list[str], *,
        user: str = HERMES_USER, environment: dict | None = None) -> ExecResult:
    api = endpoint.client.api
    try:
        with endpoint.in_flight:
            created = api.exec_create(container.id, argv, user=user, stdout=True, stderr=True,
                                      environment=environment)
            out, err = api.exec_start(created["Id"], demux=True)
            code = api.exec_inspect(created["Id"])["ExitCode"]
    except docker.errors.NotFound as exc:
        raise NotFoundError(f"container {container.name} no longer exists") from exc
    except docker.errors.APIError as exc:
        if exc.status_code == 409:
            raise ContainerStoppedError(f"container {container.name} is not running") from exc
        raise
    except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
        raise DaemonUnreachableError(f"lost the Docker daemon at {endpoint.url}: {exc}") from exc
    return ExecResult(code if code is not None else -1,
                      (out or b"").decode("utf-8", "replace"),
                      (err or b"").decode("utf-8", "replace"))
