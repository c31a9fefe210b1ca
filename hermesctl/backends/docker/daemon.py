"""One Docker daemon, as the rest of hermesctl sees it: the only module (with backends.swarm)
that touches the Docker SDK's API client. Every call here either has a deadline of its own
(`bounded`: the call runs in a daemon thread and we stop waiting at the deadline, so a daemon
that accepted the connection and then hung — `kill -STOP dockerd` — costs at most the deadline)
or is a stream or an exec whose caller bounds it (hermesctl.backends.docker.execs, streams, logs).
"""
import threading
from typing import Any, Callable, Iterator

import docker
import docker.errors
import docker.tls
import requests.exceptions

from hermesctl.backends.docker import podman
from hermesctl.backends.docker.endpoint import Endpoint
from hermesctl.backends.docker.inventory import LABEL as MANAGED_LABEL
from hermesctl.config.endpoints import EXEC_CONCURRENCY, POOL_SIZE, SSH_CONCURRENCY, Resolved, short_reason
from hermesctl.config.settings import DEFAULT_EXEC_TIMEOUT
from hermesctl.core.errors import DaemonUnreachableError, ExecTimeoutError, HermesctlError

# Reads of a request that streams (exec output, archives) wait this long per chunk: an exec's own
# deadline is enforced by hermesctl.backends.docker.execs, and a long `operate --timeout` must not be cut short.
STREAM_READ_TIMEOUT_S = 600
NotFound = docker.errors.NotFound
ImageNotFound = docker.errors.ImageNotFound
APIError = docker.errors.APIError
TRANSPORT_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException, OSError)


class DeadlineError(ExecTimeoutError):
    """A Docker API call that did not answer before its deadline."""


def bounded(fn: Callable[[], Any], deadline: float, what: str) -> Any:
    """fn() in a daemon thread; DeadlineError when it is not done after `deadline` seconds. The
    thread may stay blocked: hermesctl ends with os._exit, so it never holds the process."""
    outcome: dict = {}
    done = threading.Event()

    def call() -> None:
        try:
            outcome["value"] = fn()
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            outcome["error"] = exc
        finally:
            done.set()

    threading.Thread(target=call, name=f"docker-{what}", daemon=True).start()
    if not done.wait(deadline):
        raise DeadlineError(f"{what}: no answer within {deadline:g}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


class _OwnCAClient(docker.APIClient):
    """requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE replace a session's own CA (psf/requests
    #3829, docker/docker-py#2433): with it set, a TLS daemon whose CA is in DOCKER_CERT_PATH or a
    context fails verification. A TLS endpoint trusts exactly the CA it was configured with."""

    def merge_environment_settings(self, url, proxies, stream, verify, cert):
        settings = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if verify is None:
            settings["verify"] = self.verify
        return settings


def _api_client(**kwargs) -> docker.APIClient:
    # The constructor asks the daemon for its API version (version=None): a request like any
    # other, bounded by the caller's deadline (connect).
    return _OwnCAClient(**kwargs) if kwargs.get("tls") is not None else docker.APIClient(**kwargs)


class Daemon:
    """The Docker API of one endpoint: listing, inspecting, lifecycle, archives, execs, events.
    Answers are Docker's own dicts; errors are the SDK's (NotFound, APIError) or ours."""

    def __init__(self, api: docker.APIClient, name: str, call_timeout: float):
        self._api = api
        self.name = name
        self.call_timeout = call_timeout

    def _call(self, what: str, fn: Callable[[], Any]) -> Any:
        try:
            return bounded(fn, self.call_timeout, f"{self.name}: {what}")
        except (requests.exceptions.ConnectionError, requests.exceptions.Timeout) as exc:
            raise DaemonUnreachableError(f"lost the Docker daemon {self.name}: {short_reason(exc)}") from exc

    # --- reading --------------------------------------------------------------------------
    def containers(self, filters: dict, *, all: bool = True) -> list[dict]:  # noqa: A002 - the API's word
        return self._call("list containers", lambda: self._api.containers(all=all, filters=filters))

    def inspect_container(self, ref: str) -> dict:
        return self._call("inspect container", lambda: self._api.inspect_container(ref))

    def inspect_image(self, ref: str) -> dict:
        return self._call("inspect image", lambda: self._api.inspect_image(ref))

    def inspect_volume(self, name: str) -> dict:
        return self._call("inspect volume", lambda: self._api.inspect_volume(name))

    def info(self) -> dict:
        return self._call("info", self._api.info)

    def logs(self, ref: str) -> bytes:
        return self._call("logs", lambda: self._api.logs(ref))

    # --- lifecycle ------------------------------------------------------------------------
    def stop(self, ref: str, timeout: int) -> None:
        bounded(lambda: self._api.stop(ref, timeout=timeout), timeout + self.call_timeout, f"{self.name}: stop")

    def start(self, ref: str) -> None:
        self._call("start", lambda: self._api.start(ref))

    def rename(self, ref: str, name: str) -> None:
        self._call("rename", lambda: self._api.rename(ref, name))

    def remove(self, ref: str, *, force: bool = False) -> None:
        """Remove a container, never its volumes."""
        self._call("remove", lambda: self._api.remove_container(ref, v=False, force=force))

    def wait(self, ref: str, timeout: float) -> int:
        return bounded(lambda: self._api.wait(ref, timeout=timeout)["StatusCode"], timeout + 5, f"{self.name}: wait")

    def create_from_config(self, body: dict, name: str | None) -> str:
        return self._call("create", lambda: self._api.create_container_from_config(body, name=name))["Id"]

    def connect_network(self, ref: str, network: str, **settings) -> None:
        self._call("connect network", lambda: self._api.connect_container_to_network(ref, network, **settings))

    def create_helper(self, image: str, *, command: list[str], entrypoint: list[str] | None = None,
                      name: str | None = None, user: str | None = None, labels: dict | None = None,
                      volumes_from: list[str] | None = None, binds: list[str] | None = None,
                      environment: dict | None = None, tmpfs: dict | None = None) -> str:
        """A container with no network, for reaching volumes (never started, or run once). It
        inherits the image's labels, `io.hermes-agent.managed=true` among them: overridden, so
        that no listing of Hermes containers (ps, events, serve) ever counts a helper."""
        labels = {MANAGED_LABEL: "false", **(labels or {})}
        host_config = self._api.create_host_config(volumes_from=volumes_from, binds=binds, network_mode="none",
                                                   tmpfs=tmpfs)
        return self._call("create", lambda: self._api.create_container(
            image, entrypoint=entrypoint, command=command, name=name, user=user, network_disabled=True,
            environment=environment, labels=labels, host_config=host_config))["Id"]

    # --- archives -------------------------------------------------------------------------
    def get_archive(self, ref: str, path: str) -> Iterator[bytes]:
        stream, _ = self._call("get archive", lambda: self._api.get_archive(ref, path, chunk_size=1 << 20))
        return stream

    def put_archive(self, ref: str, path: str, data) -> None:
        self._api.put_archive(ref, path, data)

    # --- execs ----------------------------------------------------------------------------
    def exec_run(self, ref: str, argv: list[str], *, user: str,
                 environment: dict | None = None) -> tuple[int | None, bytes, bytes]:
        """argv to completion (the caller bounds it): (exit code, stdout, stderr)."""
        created = self._api.exec_create(ref, argv, user=user, stdout=True, stderr=True, environment=environment)
        out, err = self._api.exec_start(created["Id"], demux=True)
        return self._api.exec_inspect(created["Id"])["ExitCode"], out or b"", err or b""

    def exec_stream(self, ref: str, argv: list[str], *, user: str, stderr: bool = True, stdin: bool = False):
        """argv's output as it comes (a generator of chunks with a close()). With `stdin`, the
        exec's stdin is attached and never written: it closes when we go (contract.LIFELINE_OPTION)."""
        created = self._api.exec_create(ref, argv, user=user, stdout=True, stderr=stderr, stdin=stdin)
        return self._api.exec_start(created["Id"], stream=True)

    def events(self, since: int, filters: dict):
        return self._api.events(since=since, decode=True, filters=filters)

    # --- swarm, through a manager ---------------------------------------------------------
    def services(self) -> list[dict]:
        return self._call("list services", self._api.services)

    def nodes(self) -> list[dict]:
        return self._call("list nodes", self._api.nodes)

    def tasks(self, filters: dict) -> list[dict]:
        return self._call("list tasks", lambda: self._api.tasks(filters=filters))

    def secrets(self) -> list[dict]:
        return self._call("list secrets", self._api.secrets)

    def inspect_service(self, ref: str) -> dict:
        return self._call("inspect service", lambda: self._api.inspect_service(ref))

    def update_service(self, ref: str, *, template: dict, replicas: int) -> None:
        def update():
            current = self._api.inspect_service(ref)
            self._api.update_service(ref, current["Version"]["Index"], task_template=template,
                                     mode={"Replicated": {"Replicas": replicas}}, fetch_current_spec=True)
        self._call("update service", update)


def connect(spec: Resolved, *, timeout: float = DEFAULT_EXEC_TIMEOUT, engine: str | None = None) -> Endpoint:
    """A client for one endpoint, within `timeout` seconds whatever the daemon does (the SDK's
    constructor asks for the API version, which a hung daemon never answers); raises
    DaemonUnreachableError otherwise. `engine` (--engine) names the engine, else its /_ping
    answer does (hermesctl.backends.docker.podman)."""
    name, url, tls = spec.name, spec.url, spec.tls
    where = url if name == url else f"{url} ({name})"
    ssh = url.startswith("ssh://")

    def make() -> tuple[docker.APIClient, str | None]:
        if ssh:
            from hermesctl.backends.docker import sshcompat
            sshcompat.install()
        api = _api_client(base_url=url, tls=tls, timeout=timeout, use_ssh_client=ssh,
                          max_pool_size=SSH_CONCURRENCY if ssh else POOL_SIZE)
        # The SDK's ping() keeps only the body; the headers say which engine answers.
        response = api._get(api._url("/_ping"))
        response.raise_for_status()
        api.timeout = max(timeout, STREAM_READ_TIMEOUT_S)
        return api, podman.engine_from_ping(response.headers)

    try:
        api, detected = bounded(make, timeout, f"connect {where}")
    except DeadlineError:
        raise DaemonUnreachableError(f"cannot reach the Docker daemon at {where}: "
                                     f"no answer within {timeout:g}s") from None
    except TRANSPORT_ERRORS as exc:
        raise DaemonUnreachableError(f"cannot reach the Docker daemon at {where}: {short_reason(exc)}") from exc
    except HermesctlError:
        raise
    limit = SSH_CONCURRENCY if ssh else EXEC_CONCURRENCY
    return Endpoint(name=name, url=url, daemon=Daemon(api, name, timeout),
                    in_flight=threading.BoundedSemaphore(limit), cli_args=spec.cli_args,
                    engine=podman.choose(detected, engine, where))
