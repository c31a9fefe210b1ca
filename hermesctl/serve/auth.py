"""Who may act: a request carrying the server's token, as a bearer header (scripts) or as the
cookie the page sets after `/?token=…` (browsers). A cookie-borne request that changes state must
also come from the page itself (same origin), so another site cannot ride the cookie."""
import hmac
import secrets
from http.cookies import SimpleCookie
from pathlib import Path

COOKIE = "hermesctl_token"


def new_token() -> str:
    return secrets.token_urlsafe(24)


def read_token_file(path: str) -> str:
    token = Path(path).read_text(encoding="utf-8").strip()
    if len(token) < 16 or any(c.isspace() for c in token):
        raise ValueError(f"{path}: the token must be one word of at least 16 characters")
    return token


def _matches(candidate: str | None, token: str) -> bool:
    return bool(candidate) and hmac.compare_digest(candidate.encode(), token.encode())


def bearer(headers) -> str | None:
    value = headers.get("Authorization", "")
    return value[7:].strip() if value.startswith("Bearer ") else None


def cookie(headers) -> str | None:
    jar = SimpleCookie()
    try:
        jar.load(headers.get("Cookie", ""))
    except Exception:  # noqa: BLE001 - a malformed cookie header is simply no token
        return None
    return jar[COOKIE].value if COOKIE in jar else None


def can_read_as_actor(headers, token: str) -> bool:
    """Does this request carry the token at all (to show the page's buttons)?"""
    return _matches(bearer(headers), token) or _matches(cookie(headers), token)


def can_act(headers, token: str) -> bool:
    """May this request change state? Bearer: yes (browsers cannot attach it cross-site).
    Cookie: only from the page's own origin."""
    if _matches(bearer(headers), token):
        return True
    if not _matches(cookie(headers), token):
        return False
    host = headers.get("Host", "")
    origin = headers.get("Origin")
    fetch_site = headers.get("Sec-Fetch-Site")
    if origin is not None and origin not in (f"http://{host}", f"https://{host}"):
        return False
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    return origin is not None or fetch_site is not None


def set_cookie_header(token: str) -> str:
    return f"{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
