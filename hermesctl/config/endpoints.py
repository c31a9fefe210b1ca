"""Docker endpoints: which daemon(s) to talk to, resolved like the docker CLI does.

Order: --host, then --context, then DOCKER_HOST, then DOCKER_CONTEXT, then the current context in
~/.docker/config.json, then the local socket. A tcp:// URL given by --host or DOCKER_HOST takes
its TLS settings from DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, through the SDK's `kwargs_from_env`.
Contexts are loaded with the SDK's context API (`docker.context.Context`) when the SDK finds the
store the docker CLI uses; docker-py looks for it beside config.json only, so when DOCKER_CONFIG
holds no config.json yet we read the store ourselves (meta.json, TLS files beside it). Every
endpoint also knows the docker CLI flags that reach it (`--context NAME`, or `-H URL` with the
TLS flags), for `hermesctl exec` on a TTY.

This module only resolves: connecting to what it resolved, and holding the client, is the
backends' (hermesctl.backends.docker.endpoint, daemon.connect).
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from hermesctl.config.endpoint_urls import CONTEXT_NAME, check_context, check_endpoint  # noqa: F401 - re-exported
from hermesctl.core.errors import UsageError

if TYPE_CHECKING:  # the SDK is imported where TLS or a context needs it: a local socket never does
    import docker.tls

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
# Parallel execs share one HTTP connection pool per endpoint; size it for fleet-wide fan-out.
POOL_SIZE = 64
# Requests in flight per endpoint: execs (each one is a process dockerd, containerd and runc set
# up) and openings of `watch` streams (held open afterwards without counting). Past a dozen or
# so, more at once only queue inside dockerd on a small host, and with hundreds of containers
# an unbounded fan-out would hand it hundreds at once; so a fleet-wide command goes in waves of
# this many containers per endpoint (`gateway restart '*'` restarts 16 containers at a time).
EXEC_CONCURRENCY = 16
# Over ssh every connection is an ssh process, and sshd refuses more than 10 at once while they
# authenticate (MaxStartups): at most this many requests in flight per ssh endpoint.
SSH_CONCURRENCY = 4


@dataclass(frozen=True)
class Resolved:
    """One endpoint before connecting: its display name, URL, TLS config and docker CLI flags."""
    name: str
    url: str
    tls: "docker.tls.TLSConfig | None" = None
    cli_args: tuple[str, ...] = ()


def _config_dir() -> Path:
    return Path(os.environ.get("DOCKER_CONFIG") or Path.home() / ".docker")


def _tls_args(tls: "docker.tls.TLSConfig | None") -> tuple[str, ...]:
    """The docker CLI flags for a TLS config: --tlsverify with the CA, or --tls without."""
    if tls is None:
        return ()
    args: list[str] = ["--tlsverify"] if tls.verify else ["--tls"]
    if tls.verify and isinstance(tls.ca_cert, str):
        args += ["--tlscacert", tls.ca_cert]
    if tls.cert:
        args += ["--tlscert", tls.cert[0], "--tlskey", tls.cert[1]]
    return tuple(args)


def _tls_from_env(url: str) -> "docker.tls.TLSConfig | None":
    """DOCKER_TLS_VERIFY/DOCKER_CERT_PATH, read by the SDK, for a tcp:// endpoint."""
    if not url.startswith(("tcp://", "https://")):
        return None
    import docker.errors
    from docker.utils import kwargs_from_env
    try:
        return kwargs_from_env({**os.environ, "DOCKER_HOST": url}).get("tls")
    except docker.errors.TLSParameterError as exc:
        raise UsageError(f"TLS settings (DOCKER_TLS_VERIFY, DOCKER_CERT_PATH): {exc}") from None


def _host(url: str, name: str | None = None) -> Resolved:
    check_endpoint(url)
    tls = _tls_from_env(url)
    return Resolved(name or url, url, tls, ("-H", url, *_tls_args(tls)))


def _sdk_context(name: str):
    """The context through docker-py's context API, when docker-py finds the CLI's store."""
    import docker.errors
    from docker.context import Context
    from docker.context.config import get_context_dir
    ours = _config_dir() / "contexts"
    try:
        if Path(get_context_dir()).resolve() != ours.resolve():
            return None
        return Context.load_context(name)
    except (OSError, ValueError, KeyError, docker.errors.DockerException):
        return None
    except Exception as exc:  # noqa: BLE001 - docker-py raises a bare Exception for a corrupt meta.json
        raise UsageError(f"Docker context {name!r}: {str(exc).splitlines()[0][:160]}") from None


def _context(name: str) -> Resolved:
    check_context(name)
    if name == "default":
        url = os.environ.get("DOCKER_HOST") or DEFAULT_SOCKET
        resolved = _host(url, "default")
        return Resolved("default", resolved.url, resolved.tls, ("--context", "default"))
    import hashlib  # here: OpenSSL's loading costs every command ~3 ms, and only a context needs it
    digest = hashlib.sha256(name.encode()).hexdigest()
    meta = _config_dir() / "contexts" / "meta" / digest / "meta.json"
    ctx = _sdk_context(name)
    if ctx is not None and ctx.Host:
        url, tls = ctx.Host, ctx.tls_cfg.get("docker")
    else:
        try:
            endpoint = json.loads(meta.read_text())["Endpoints"]["docker"]
            url = endpoint["Host"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UsageError(f"unknown Docker context {name!r} (no {meta})") from exc
        tls = _context_tls(digest, verify=not endpoint.get("SkipTLSVerify", False))
    if not isinstance(url, str):
        raise UsageError(f"Docker context {name!r} has no docker endpoint")
    check_endpoint(url)
    return Resolved(name, url, tls, ("--context", name))


def _context_tls(digest: str, *, verify: bool) -> "docker.tls.TLSConfig | None":
    """A context's TLS files (ca.pem, cert.pem, key.pem; any may be absent), as the CLI stores them."""
    import docker.errors
    import docker.tls
    tls_dir = _config_dir() / "contexts" / "tls" / digest / "docker"
    ca, cert, key = (tls_dir / "ca.pem", tls_dir / "cert.pem", tls_dir / "key.pem")
    if not (ca.exists() or cert.exists()):
        return None
    try:
        return docker.tls.TLSConfig(
            client_cert=(str(cert), str(key)) if cert.exists() else None,
            ca_cert=str(ca) if ca.exists() else None, verify=verify)
    except docker.errors.TLSParameterError as exc:
        raise UsageError(f"Docker context TLS files in {tls_dir}: {exc}") from None


def _current_context() -> str | None:
    if os.environ.get("DOCKER_CONTEXT"):
        return os.environ["DOCKER_CONTEXT"]
    try:
        return json.loads((_config_dir() / "config.json").read_text()).get("currentContext")
    except (OSError, ValueError, AttributeError):
        return None


def resolve(host: str | None = None, context: str | None = None) -> Resolved:
    """One endpoint: --host, else --context, else the environment (DOCKER_HOST, DOCKER_CONTEXT,
    the current context), else the local socket. An empty --host or --context is an error, not
    the local daemon."""
    if host is not None:
        return _host(host)
    if context is not None:
        return _context(context)
    if os.environ.get("DOCKER_HOST"):
        return _host(os.environ["DOCKER_HOST"], "default")
    name = _current_context()
    if name and name != "default":
        return _context(name)
    return Resolved("default", DEFAULT_SOCKET, None, ("-H", DEFAULT_SOCKET))


def short_reason(exc: BaseException) -> str:
    """docker-py wraps socket errors several layers deep; name the cause in a few words."""
    text = str(exc)
    for needle, reason in (("HTTP request to an HTTPS server", "the daemon expects TLS (DOCKER_TLS_VERIFY=1, DOCKER_CERT_PATH)"),
                           ("CERTIFICATE_VERIFY_FAILED", "TLS: the daemon's certificate is not trusted (wrong CA?)"),
                           ("certificate required", "TLS: the daemon requires a client certificate"),
                           ("SSL", "TLS handshake failed"),
                           ("FileNotFoundError", "no such socket"), ("No such file", "no such socket"),
                           ("Connection refused", "connection refused"), ("Permission denied", "permission denied"),
                           ("timed out", "timed out"), ("Name or service not known", "unknown host")):
        if needle in text:
            return reason
    return (text.splitlines() or [type(exc).__name__])[0][:160]


def resolve_local(hosts: list[str]) -> list[Resolved] | None:
    """The endpoints of `hosts` (or of the environment when there are none) when every one is a
    local socket (unix://, no TLS) found without a Docker context; None otherwise. Such an
    endpoint is spoken to without the Docker SDK (hermesctl.backends.docker.unix_api)."""
    if not hosts and not os.environ.get("DOCKER_HOST") and _current_context() not in (None, "", "default"):
        return None
    specs = [resolve(host=h) for h in hosts] if hosts else [resolve()]
    return specs if all(s.url.startswith("unix://") and s.tls is None for s in specs) else None
