# Runs as hermes: cont-init 01-secret-env (hermes-slots load-secrets, after s6-setuidgid hermes) and the agent.
"""Swarm secrets into profiles' .env files, as hermes (cont-init 01-secret-env and
`hermes-slots load-secrets`).

`hermesctl apply --swarm` attaches a fleet file's `{from_secret: NAME}` to the service as the
file /run/secrets/hermes-env.<profile>.<KEY>, owned by hermes, mode 0400. The value therefore
never travels through an exec's argv or environment, and `docker inspect` shows only the secret's
name. This runs as hermes: it reads only what hermes may read, and writes only hermes' own .env
files (through envfile.set_env, the same checked writer `set-env` uses). A value is the file's
content without one final newline, as `printf '%s\\n' VALUE | docker secret create` leaves it.
"""
import os
import re
import stat

from . import contract as C
from .envfile import MAX_VALUE, EnvValueError, problem, read_env, set_env
from .paths import DEFAULT_PROFILE, profile_dir

# <prefix><profile>.<KEY>: neither profile names nor keys hold a dot, so the split is unambiguous.
_NAME = re.compile(re.escape(C.SECRET_ENV_PREFIX) + r"([a-z0-9][a-z0-9_-]{0,63})\.([A-Za-z_][A-Za-z0-9_]{0,127})")


def _value(path: str) -> str:
    """The secret's value; OSError or ValueError (never naming the value) when unusable."""
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ValueError("not a regular file")
        data = os.read(fd, MAX_VALUE * 4 + 3)
    finally:
        os.close(fd)
    text = data.decode("utf-8")  # UnicodeDecodeError is a ValueError
    return text.removesuffix("\n").removesuffix("\r")


def secrets_by_profile(directory: str = C.SECRET_DIR) -> dict[str, dict[str, str]]:
    """{profile: {KEY: file path}} for every hermes-env.* secret present."""
    found: dict[str, dict[str, str]] = {}
    try:
        entries = sorted(os.scandir(directory), key=lambda e: e.name)
    except FileNotFoundError:
        return found
    for entry in entries:
        match = _NAME.fullmatch(entry.name)
        if match:
            found.setdefault(match.group(1), {})[match.group(2)] = entry.path
    return found


def _env_path(profile: str):
    directory = profile_dir(profile)
    if profile != DEFAULT_PROFILE and not (directory / C.SOUL_FILE).is_file():
        return None
    return directory / ".env"


def load(profiles: list[str] | None = None, *, check: bool = False,
         directory: str = C.SECRET_DIR) -> dict[str, dict[str, str]]:
    """Write (or with check=True only compare) each secret into its profile's .env.
    Returns {profile: {KEY: outcome}}; outcomes: written, same, differs (check), no-profile,
    unreadable, refused. Only names and outcomes: never a value."""
    report: dict[str, dict[str, str]] = {}
    for profile, files in secrets_by_profile(directory).items():
        if profiles is not None and profile not in profiles:
            continue
        outcome = report.setdefault(profile, {})
        env_path = _env_path(profile)
        if env_path is None:
            outcome.update({key: "no-profile" for key in files})
            continue
        values = {}
        for key, path in files.items():
            try:
                value = _value(path)
            except (OSError, ValueError):
                outcome[key] = "unreadable"
                continue
            if problem(key, value):
                outcome[key] = "refused"
                continue
            values[key] = value
        current = read_env(env_path)
        for key, value in values.items():
            outcome[key] = "same" if current.get(key) == value else ("differs" if check else "written")
        if not check:
            try:
                set_env(env_path, {k: v for k, v in values.items() if outcome[k] == "written"})
            except (OSError, EnvValueError):
                outcome.update({k: "refused" for k in values if outcome[k] == "written"})
    return report
