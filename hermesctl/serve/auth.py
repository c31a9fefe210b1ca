"""Who may ask what of `hermesctl serve`.

The credential is the server's token, sent as `Authorization: Bearer TOKEN`, never as a cookie:
browsers send a host's cookies to every port of that host, so a cookie set by this server would
also reach whatever a container (or another local user) serves on another port of 127.0.0.1. The
page keeps the token in its own tab's sessionStorage, which is scoped to scheme, host *and* port,
and attaches the header itself; a request from any other origin cannot attach it (a custom
header needs a CORS preflight, which this server never grants).

Every request is also checked for its Host: a DNS-rebinding page (evil.example resolving to
127.0.0.1) sends `Host: evil.example`, which names nothing this server serves. IP literals and
`localhost` cannot be rebound; other names must be given with --allow-host.
"""
import hmac
import ipaddress
import secrets
from pathlib import Path

# The page keeps the token under this sessionStorage key (see page.py).
SESSION_KEY = "hermesctl-token"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def read_token_file(path: str) -> str:
    token = Path(path).read_text(encoding="utf-8").strip()
    # It travels in an HTTP header (Authorization: Bearer): printable ASCII, no spaces.
    if len(token) < 16 or not all("!" <= c <= "~" for c in token):
        raise ValueError(f"{path}: the token must be one word of at least 16 printable ASCII characters")
    return token


def matches(candidate: str | None, token: str) -> bool:
    return bool(candidate) and hmac.compare_digest(candidate.encode(), token.encode())


def bearer(headers) -> str | None:
    value = headers.get("Authorization", "")
    return value[7:].strip() if value.startswith("Bearer ") else None


def has_token(headers, token: str) -> bool:
    return matches(bearer(headers), token)


def host_name(host_header: str) -> str | None:
    """The name part of a Host header (`name`, `name:port`, `[v6]:port`); None if malformed."""
    host = host_header.strip()
    if host.startswith("["):
        end = host.find("]")
        if end < 0 or (host[end + 1:] and not _is_port(host[end + 1:])):
            return None
        return host[1:end]
    name, sep, port = host.rpartition(":")
    if not sep:
        return host or None
    return name if name and _is_port(":" + port) else None


def _is_port(text: str) -> bool:
    return text.startswith(":") and text[1:].isdigit() and len(text) <= 6


def host_allowed(headers, allowed_names: frozenset[str]) -> bool:
    """Does the request name this server (an IP literal, localhost, or an --allow-host name)?"""
    name = host_name(headers.get("Host", ""))
    if name is None:
        return False
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return name.lower() in allowed_names


def can_act(headers, token: str) -> bool:
    """May this request change state? The token, and, when a browser says where the request
    comes from, the page's own origin."""
    if not has_token(headers, token):
        return False
    host = headers.get("Host", "")
    origin = headers.get("Origin")
    fetch_site = headers.get("Sec-Fetch-Site")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        return False
    return fetch_site is None or fetch_site in ("same-origin", "none")
