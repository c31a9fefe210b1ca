"""A profile's .env: read some keys, set some keys, keep everything else and the 0600 mode."""
import os
import re
from pathlib import Path

_ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")
KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def read_env(path: Path) -> dict[str, str]:
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return {}
    found = {}
    for line in lines:
        m = _ASSIGNMENT.match(line)
        if m:
            found[m.group(1)] = _unquote(m.group(2))
    return found


def set_env(path: Path, values: dict[str, str]) -> list[str]:
    """Set `values` in the file (replacing assignments in place, appending new ones); returns
    the keys that changed. Written atomically with mode 0600: it holds secrets."""
    for key, value in values.items():
        if not KEY.match(key) or "\n" in value:
            raise ValueError(f"refusing to write {key!r}: bad key or a newline in its value")
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        lines = []
    current = read_env(path)
    changed = [k for k, v in values.items() if current.get(k) != v]
    if not changed:
        return []
    pending = dict(values)
    out = []
    for line in lines:
        m = _ASSIGNMENT.match(line)
        if m and m.group(1) in pending:
            key = m.group(1)
            out.append(f"{key}={pending.pop(key)}")
        else:
            out.append(line)
    out += [f"{k}={v}" for k, v in pending.items()]
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("\n".join(out) + "\n")
    os.replace(tmp, path)
    return changed
