# Runs as hermes: imported by the agent (`serving`, `facts` with a token key), as hermes only.
"""Is a gateway serving? What only the container can answer: each profile's API server asked on
the container's loopback (`/health`, and with a prompt one chat completion), the platforms its
environment configures, and keyed hashes of its platform tokens.

The API key and the tokens never leave the container: the host gets status codes, latencies,
the first line of an answer (bounded; the host escapes it) and HMACs under a key it sent for
this run. Everything read here is hermes' own (.env files, the API server's answers): bounded,
parsed strictly, and never followed anywhere but 127.0.0.1 / ::1 (http.client: no proxy from
the environment, no redirect that could carry the key elsewhere)."""
import hashlib
import hmac
import http.client
import json
import os
import stat
import time

from . import contract as C
from .envfile import read_env
from .paths import profile_dir

API_DEFAULT_PORT = 8642             # gateway/platforms/api_server.py DEFAULT_PORT (hermes-agent 0.19.0)
API_KEY_MIN = 16                    # hermes refuses to start its API server with a shorter key
TRUTHY = ("1", "true", "yes", "on")  # hermes' utils.TRUTHY_STRINGS
LOOPBACK = {"": "127.0.0.1", "127.0.0.1": "127.0.0.1", "localhost": "127.0.0.1", "0.0.0.0": "127.0.0.1",
            "::": "::1", "::1": "::1"}
MAX_BODY = 1 << 20                  # bytes of an answer read at most
FIRST_LINE_MAX = 300                # characters of the answer's first line reported


def effective_env(profile: str) -> dict[str, str]:
    """What the profile's gateway sees: the container's environment (the exec's, which is the
    one the slot's `run` restores), overridden by the profile's .env (hermes loads it with
    override=True)."""
    env = dict(os.environ)
    path = profile_dir(profile) / ".env"
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return env
    if not stat.S_ISREG(mode):  # a FIFO would hold the read until the deadline: hermes' own .env, said so
        raise ValueError(f"{path} is not a regular file")
    env.update(read_env(path))
    return env


def configured_platforms(env: dict[str, str]) -> list[str]:
    """Platforms whose token the environment sets, as gateway_state.json names them: a
    configured platform with no state at all never got an adapter (e.g. its package missing)."""
    found = {C.PLATFORM_TOKEN_KEYS[key] for key in C.PLATFORM_TOKEN_KEYS if env.get(key, "").strip()}
    return sorted(found)


def api_settings(env: dict[str, str]) -> dict:
    """The API server hermes would start from this environment (gateway/config.py: enabled by
    API_SERVER_ENABLED or a key; API_SERVER_HOST/PORT), and whether it can be asked here."""
    enabled = env.get("API_SERVER_ENABLED", "").strip().lower() in TRUTHY or bool(env.get("API_SERVER_KEY"))
    if not enabled:
        return {"enabled": False}
    host = env.get("API_SERVER_HOST", "").strip()
    raw_port = env.get("API_SERVER_PORT", "").strip() or str(API_DEFAULT_PORT)
    settings = {"enabled": True, "host": host[:100], "port": None, "reason": None}
    if not raw_port.isascii() or not raw_port.isdigit() or not 0 < int(raw_port) < 65536:
        settings["reason"] = "API_SERVER_PORT is not a port number"
        return settings
    settings["port"] = int(raw_port)
    if host not in LOOPBACK:
        settings["reason"] = "API_SERVER_HOST is not a loopback or wildcard address: not asked from here"
    elif len(env.get("API_SERVER_KEY", "").strip()) < API_KEY_MIN:
        settings["reason"] = f"API_SERVER_KEY is missing or shorter than {API_KEY_MIN} characters: hermes refuses to start the API server"
    return settings


def _request(address: str, port: int, method: str, path: str, timeout: float, *,
             body: bytes | None = None, headers: dict | None = None) -> tuple[int, bytes, float]:
    started = time.monotonic()
    connection = http.client.HTTPConnection(address, port, timeout=timeout)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        data = response.read(MAX_BODY + 1)
        return response.status, data, time.monotonic() - started
    finally:
        connection.close()


def _outcome(call) -> dict:
    """{ok, status, seconds, error} of one HTTP call (no exception escapes)."""
    started = time.monotonic()
    try:
        status, data, seconds = call()
    except (OSError, http.client.HTTPException) as exc:
        kind = "timeout" if isinstance(exc, TimeoutError) else "error"
        return {"ok": False, "status": None, "seconds": round(time.monotonic() - started, 4),
                "error": f"{kind}: {type(exc).__name__}: {str(exc)[:200]}"}
    return {"ok": status == 200, "status": status, "seconds": round(seconds, 4), "error": None, "_data": data}


def first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()[:FIRST_LINE_MAX]
    return ""


def _chat(address: str, port: int, key: str, prompt: str, timeout: float) -> dict:
    body = json.dumps({"messages": [{"role": "user", "content": prompt}], "stream": False}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    result = _outcome(lambda: _request(address, port, "POST", "/v1/chat/completions", timeout,
                                       body=body, headers=headers))
    data = result.pop("_data", b"")
    result["first_line"] = None
    if result["status"] is None:
        return result
    try:
        doc = json.loads(data[:MAX_BODY].decode("utf-8", "replace"))
    except ValueError:
        doc = None
    if result["ok"]:
        try:
            content = doc["choices"][0]["message"]["content"]
            if not isinstance(content, str):
                raise TypeError
        except (TypeError, KeyError, IndexError):
            result.update(ok=False, error="the answer is not a chat completion")
            return result
        result["first_line"] = first_line(content)
        if not content.strip():
            result.update(ok=False, error="the answer is empty")
    else:
        message = doc.get("error", {}).get("message") if isinstance(doc, dict) and isinstance(doc.get("error"), dict) else None
        result["error"] = f"HTTP {result['status']}" + (f": {str(message)[:200]}" if message else "")
    return result


def check_profile(profile: str, prompt: str | None, timeout: float) -> dict:
    """One profile: configured platforms, its API server's settings, /health, and the chat."""
    try:
        env = effective_env(profile)
    except (OSError, ValueError) as exc:
        return {"configured": [], "api": {"enabled": False}, "error": f"cannot read its .env: {str(exc)[:200]}"}
    answer = {"configured": configured_platforms(env), "api": api_settings(env), "error": None}
    api = answer["api"]
    if not api["enabled"] or api["reason"]:
        return answer
    address = LOOPBACK[api["host"]]
    health = _outcome(lambda: _request(address, api["port"], "GET", "/health", min(timeout, 10.0)))
    health.pop("_data", None)
    if health["status"] not in (None, 200):
        health["error"] = f"HTTP {health['status']}"
    api["health"] = health
    if prompt is not None and health["ok"]:
        api["chat"] = _chat(address, api["port"], env["API_SERVER_KEY"].strip(), prompt, timeout)
    return answer


def serving(profiles: list[str], prompt: str | None, timeout: float) -> dict:
    """Every profile asked at once (a chat completion may take the whole deadline)."""
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(max_workers=min(8, max(1, len(profiles)))) as pool:
        answers = dict(zip(profiles, pool.map(lambda p: check_profile(p, prompt, timeout), profiles)))
    return {"schema": C.SCHEMA, "verb": "serving", "profiles": answers}


def token_hashes(profiles: list[str], key: bytes) -> dict[str, dict[str, str]]:
    """{profile: {TOKEN_KEY: HMAC-SHA256(key, value)}} of each platform token a profile's gateway
    would use; the key is the host's, new every run, so a hash means nothing outside that run."""
    found: dict[str, dict[str, str]] = {}
    for profile in profiles:
        try:
            env = effective_env(profile)
        except (OSError, ValueError):
            continue
        hashes = {k: hmac.new(key, env[k].strip().encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()
                  for k in C.PLATFORM_TOKEN_KEYS if env.get(k, "").strip()}
        if hashes:
            found[profile] = hashes
    return found
