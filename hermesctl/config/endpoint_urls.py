"""Docker endpoint URLs and context names, checked before anything connects: what the SDK and
the docker CLI read the same way, or a usage error. Stdlib only, so that the CLI can check its
options before (or without) importing the Docker SDK."""
import ipaddress
import re
from urllib.parse import urlsplit

from hermesctl.core.errors import UsageError

# The docker CLI's own rule for context names.
CONTEXT_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]{0,127}")
_HOSTNAME = re.compile(r"[A-Za-z0-9_]([A-Za-z0-9_.-]{0,252})")
_SSH_USER = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def check_endpoint(url: str) -> str:
    """A Docker endpoint URL the SDK and the docker CLI read the same way, or a UsageError.
    unix:///path, tcp://host:port (a port in 1..65535), ssh://[user@]host[:port]; nothing an
    ssh client could take for an option (a host, user or port starting with '-')."""
    what = f"invalid Docker endpoint {url[:100]!r}"
    if not url:
        raise UsageError("empty Docker endpoint URL (give unix://, tcp:// or ssh://, or leave the option out)")
    if not url.isascii() or not url.isprintable() or len(url) > 1024:
        raise UsageError(f"{what}: only printable ASCII")
    try:
        parts = urlsplit(url)
        port = parts.port
        hostname = parts.hostname
    except ValueError as exc:
        raise UsageError(f"{what}: {exc}") from None
    if parts.query or parts.fragment or parts.password is not None:
        raise UsageError(f"{what}: no query, fragment or password allowed")
    if parts.scheme == "unix":
        if not (parts.path or hostname):
            raise UsageError(f"{what}: unix:// needs a socket path")
        return url
    if parts.scheme not in ("tcp", "ssh", "http", "https"):
        raise UsageError(f"{what}: the scheme must be unix://, tcp:// or ssh://")
    if not hostname:
        raise UsageError(f"{what}: no host")
    if port is not None and not 1 <= port <= 65535:
        raise UsageError(f"{what}: port out of range")
    if parts.scheme != "ssh" and port is None:
        raise UsageError(f"{what}: a port is required (tcp://HOST:2376)")
    if parts.scheme == "ssh" and parts.path not in ("", "/"):
        raise UsageError(f"{what}: no path allowed for ssh://")
    if ":" in hostname:
        try:
            ipaddress.IPv6Address(hostname)
        except ValueError:
            raise UsageError(f"{what}: not an IPv6 address") from None
    elif not _HOSTNAME.fullmatch(hostname):
        raise UsageError(f"{what}: not a host name")
    if parts.username is not None and not _SSH_USER.fullmatch(parts.username):
        raise UsageError(f"{what}: not a user name")
    return url


def check_context(name: str) -> str:
    if not name:
        raise UsageError("empty Docker context name")
    if not CONTEXT_NAME.fullmatch(name):
        raise UsageError(f"invalid Docker context name {name[:100]!r}")
    return name
