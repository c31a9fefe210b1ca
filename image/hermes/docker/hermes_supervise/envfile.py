# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""A profile's .env, read and written with python-dotenv, the parser hermes itself loads it with
(hermes_cli/env_loader.py: `load_dotenv(path, override=True)`, UTF-8 with a latin-1 fallback).

Reading gives what hermes sees (`A=8642 # note` is `8642`). Writing replaces only the bindings of
the keys it sets, keeps every other line byte for byte, quotes each value so that dotenv reads it
back exactly (checked by parsing the new text before it is written), and replaces the file
atomically with mode 0600. A value dotenv cannot carry exactly (control characters, which would
end the line or vanish, or `${...}`, which dotenv expands) is refused before anything is written.
"""
import io
import os
import re
import unicodedata
from pathlib import Path

from dotenv import dotenv_values
from dotenv.parser import parse_stream
from dotenv.variables import Literal, parse_variables

KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,127}")  # fullmatch
MAX_VALUE = 64 * 1024
_PLAIN = re.compile(r"[A-Za-z0-9_./:@%+,-]+")


class EnvValueError(ValueError):
    """A key or value that cannot be written; the message never contains the value."""


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")  # as hermes' loader falls back


def read_env(path: Path) -> dict[str, str]:
    """Every key as hermes reads it (interpolated as load_dotenv does; a bare `KEY` is absent)."""
    try:
        text = _decode(path.read_bytes())
    except FileNotFoundError:
        return {}
    return {k: v for k, v in dotenv_values(stream=io.StringIO(text)).items() if v is not None}


def problem(key: str, value: str) -> str | None:
    """Why `key=value` cannot be written so that hermes reads exactly `value`; None if it can."""
    if not isinstance(key, str) or not KEY.fullmatch(key):
        return "not an environment variable name"
    if not isinstance(value, str):
        return "the value is not text"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from undecodable bytes, or "\ud800" in JSON) has no UTF-8 form: it
        # would be written as something else and read back different forever.
        return "the value is not valid Unicode text (a lone surrogate), which .env cannot carry"
    if len(value) > MAX_VALUE:
        return f"the value is longer than {MAX_VALUE} characters"
    if any(unicodedata.category(c) in ("Cc", "Zl", "Zp") for c in value):
        return "the value holds control characters (NUL, CR, LF, TAB ...), which .env cannot carry"
    if not all(isinstance(atom, Literal) for atom in parse_variables(value)):
        return "the value holds ${...}, which hermes' .env loader would expand"
    return None


def _candidates(value: str) -> list[str]:
    """Ways to write `value`, best first; the first that dotenv reads back exactly is used."""
    single = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    double = '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    # Plain words stay unquoted (readable, as people write .env). dotenv's quoted-value patterns
    # take `\'` as an escaped quote even after another backslash, so a backslash is safest
    # unquoted when the value allows it.
    if _PLAIN.fullmatch(value) or "\\" in value:
        return [value, single, double]
    return [single, value, double]


def _raw(text: str) -> dict[str, str | None]:
    """What dotenv_values(interpolate=False) returns, without its warnings about other lines."""
    return {b.key: b.value for b in parse_stream(io.StringIO(text)) if b.key is not None}


def render(text: str, values: dict[str, str]) -> str:
    """`text` with `values` set: each key's first binding replaced, later ones dropped, new keys
    appended; every other line as it was. Raises EnvValueError if the result would not read back
    as intended (so nothing is written)."""
    for key, value in values.items():
        why = problem(key, value)
        if why:
            raise EnvValueError(f"refusing to write {key if KEY.fullmatch(str(key)) else '(bad key)'}: {why}")
    before = _raw(text)
    bindings = list(parse_stream(io.StringIO(text)))
    chosen: dict[str, str] = {}
    for key, value in values.items():
        for encoded in _candidates(value):
            trial = _assemble(bindings, {**chosen, key: f"{key}={encoded}\n"})
            got = _raw(trial)
            if got.get(key) == value and all(got.get(k) == v for k, v in values.items() if k in chosen):
                chosen[key] = f"{key}={encoded}\n"
                break
        else:
            raise EnvValueError(f"refusing to write {key}: no quoting of this value reads back exactly")
    result = _assemble(bindings, chosen)
    after = _raw(result)
    expected = {**{k: v for k, v in before.items() if k not in values}, **values}
    if after != expected:
        raise EnvValueError("refusing to write: the file would not read back as intended")
    return result


def _assemble(bindings, lines: dict[str, str]) -> str:
    out: list[str] = []
    done: set[str] = set()
    for b in bindings:
        original = b.original.string
        if b.key in lines:
            if b.key not in done:
                lead = re.match(r"\s*", original).group(0)  # blank lines before the binding stay
                out.append(lead[: max(lead.rfind("\n"), lead.rfind("\r")) + 1] + lines[b.key])
                done.add(b.key)
            continue  # a later duplicate would override the value we set
        out.append(original)
    rest = [lines[k] for k in lines if k not in done]
    if rest and out and not out[-1].endswith(("\n", "\r")):
        out[-1] += "\n"
    return "".join(out + rest)


def set_env(path: Path, values: dict[str, str]) -> list[str]:
    """Set `values` in the file; returns the keys whose value (as hermes reads it) changed.
    Everything is checked before the file is touched; written atomically with mode 0600."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        data = b""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvValueError(f"{path} is not UTF-8; refusing to rewrite it") from None
    for key, value in values.items():  # every key and value checked before anything else
        why = problem(key, value)
        if why:
            raise EnvValueError(f"refusing to write {key if KEY.fullmatch(str(key)) else '(bad key)'}: {why}")
    current = read_env(path) if data else {}
    changed = [k for k, v in values.items() if current.get(k) != v]
    if not changed:
        return []
    new_text = render(text, {k: values[k] for k in changed})
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            f.write(new_text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return changed
