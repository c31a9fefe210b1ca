"""Docker endpoints: which daemon(s) to talk to, resolved like the docker CLI does.

Order: --host, then --context, then DOCKER_HOST, then DOCKER_CONTEXT, then the current context in
~/.docker/config.json, then the local socket. docker-py 7.1 ignores contexts, so we read the
context store ourselves (meta.json per context, TLS material beside it).
"""
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import requests.exceptions

from hermesctl.errors import DaemonUnreachableError, UsageError

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Parallel execs share one HTTP connection pool per endpoint; size it for fleet-wide fan-out.
POOL_SIZE = 64
# Over ssh every connection is an ssh process, and sshd refuses more than 10 at once while they
# authenticate (MaxStartups): at most this many requests in flight per ssh endpoint.
SSH_CONCURRENCY = 4


@dataclass
class Endpoint:
    name: str
    url: str
    client: docker.DockerClient
    in_flight: threading.BoundedSemaphore = field(default_factory=lambda: threading.BoundedSemaphore(POOL_SIZE))


def _config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG", Path.home() / ".docker"))


def _context_url(name: str) -> tuple[str, docker.tls.TLSConfig | None]:
    if name == "default":
        return os.environ.get("DOCKER_HOST", DEFAULT_SOCKET), None
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = _config_dir() / "contexts" / "meta" / digest / "meta.json"
    try:
        endpoint = json.loads(meta.read_text())["Endpoints"]["docker"]
    except (OSError, ValueError, KeyError) as exc:
        raise UsageError(f"unknown Docker context {name!r} (no {meta})") from exc
    tls_dir = _config_dir() / "contexts" / "tls" / digest / "docker"
    tls = None
    if (tls_dir / "cert.pem").exists():
        ca = tls_dir / "ca.pem"
        tls = docker.tls.TLSConfig(
            client_cert=(str(tls_dir / "cert.pem"), str(tls_dir / "key.pem")),
            ca_cert=str(ca) if ca.exists() else None,
            verify=not endpoint.get("SkipTLSVerify", False),
        )
    return endpoint["Host"], tls


def _current_context() -> str | None:
    if os.environ.get("DOCKER_CONTEXT"):
        return os.environ["DOCKER_CONTEXT"]
    try:
        return json.loads((_config_dir() / "config.json").read_text()).get("currentContext")
    except (OSError, ValueError):
        return None


def resolve(host: str | None = None, context: str | None = None) -> tuple[str, str, object]:
    """(display name, url, tls config) for one endpoint."""
    if host:
        return host, host, None
    if context:
        url, tls = _context_url(context)
        return context, url, tls
    if os.environ.get("DOCKER_HOST"):
        return "default", os.environ["DOCKER_HOST"], None
    name = _current_context()
    if name and name != "default":
        url, tls = _context_url(name)
        return name, url, tls
    return "default", DEFAULT_SOCKET, None


def short_reason(exc: BaseException) -> str:
    """docker-py wraps socket errors several layers deep; name the cause in a few words."""
    text = str(exc)
    for needle, reason in (("FileNotFoundError", "no such socket"), ("No such file", "no such socket"),
                           ("Connection refused", "connection refused"), ("Permission denied", "permission denied"),
                           ("timed out", "timed out"), ("Name or service not known", "unknown host")):
        if needle in text:
            return reason
    return (text.splitlines() or [type(exc).__name__])[0][:160]


def connect(name: str, url: str, tls: object = None, *, timeout: int = 120) -> Endpoint:
    """A client for one endpoint; raises DaemonUnreachableError if it does not answer a ping."""
    try:
        ssh = url.startswith("ssh://")
        if ssh:
            from hermesctl import sshcompat
            sshcompat.install()
        client = docker.DockerClient(base_url=url, tls=tls, timeout=timeout, use_ssh_client=ssh,
                                     max_pool_size=SSH_CONCURRENCY if ssh else POOL_SIZE)
        client.api.timeout = 10  # the ping must fail fast; execs get the long timeout back
        client.ping()
        client.api.timeout = timeout
    except (docker.errors.DockerException, requests.exceptions.RequestException, OSError) as exc:
        where = url if name == url else f"{url} ({name})"
        raise DaemonUnreachableError(f"cannot reach the Docker daemon at {where}: {short_reason(exc)}") from exc
    limit = SSH_CONCURRENCY if url.startswith("ssh://") else POOL_SIZE
    return Endpoint(name=name, url=url, client=client, in_flight=threading.BoundedSemaphore(limit))
