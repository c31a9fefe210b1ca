# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""The agent's arguments, parsed from the verb table (contract.VERBS): one definition for the
dispatch, the parsing and the docs. Strict: an unknown option, a missing or extra argument, a
value of the wrong type is a ValueError (the agent's `usage`; a bad profile name `invalid-name`)."""
import math

from . import contract as C
from .names import require_valid_profile


def _convert(kind: str, text: str, what: str):
    if kind == "profile":
        return require_valid_profile(text)
    if kind == "int":
        if not text.isascii() or not text.isdigit():
            raise ValueError(f"{what} needs a whole number, not {text[:40]!r}")
        return int(text)
    if kind == "float":
        try:
            value = float(text)
        except ValueError:
            raise ValueError(f"{what} needs a number, not {text[:40]!r}") from None
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"{what} needs a number >= 0, not {text[:40]!r}")
        return value
    if "|" in kind:
        if text not in kind.split("|"):
            raise ValueError(f"{what} must be one of {kind.replace('|', ', ')}, not {text[:40]!r}")
        return text
    return text


def parse(verb: str, argv: list[str]) -> dict:
    """{argument name: value} for `verb`'s argv (contract.VERBS[verb]["args"])."""
    spec = C.VERBS[verb]["args"]
    named = {f"--{name}": (name, kind, typ) for name, kind, typ, _ in spec if kind in ("flag", "option")}
    values = {name: default for name, kind, _, default in spec if kind in ("flag", "option")}
    rest = next((name for name, kind, _, _ in spec if kind == "rest"), None)
    free: list[str] = []
    i = 0
    while i < len(argv):
        token = argv[i]
        if token in named:
            name, kind, typ = named[token]
            if kind == "flag":
                values[name] = True
            else:
                if i + 1 >= len(argv):
                    raise ValueError(f"{verb} {token} needs a value")
                values[name] = _convert(typ, argv[i + 1], f"{verb} {token}")
                i += 1
        elif rest is not None:  # everything from here (after an optional --) is the command
            values[rest] = argv[i + 1:] if token == "--" else argv[i:]
            break
        elif token == "--":
            free.extend(argv[i + 1:])
            break
        elif token.startswith("--"):
            raise ValueError(f"{verb}: unknown option {token[:40]!r}")
        else:
            free.append(token)
        i += 1
    if rest is not None and not values.get(rest):
        raise ValueError(f"{verb} needs a command")
    for name, kind, typ, _ in spec:
        if kind == "arg":
            if not free:
                raise ValueError(f"{verb} needs {name}")
            values[name] = _convert(typ, free.pop(0), f"{verb} {name}")
        elif kind == "opt-args":
            values[name] = [_convert(typ, text, f"{verb} {name}") for text in free]
            free = []
        elif kind == "args":
            if not free:
                raise ValueError(f"{verb} needs at least one {name[:-1] if name.endswith('s') else name}")
            values[name] = [_convert(typ, text, f"{verb} {name}") for text in free]
            free = []
    if free:
        raise ValueError(f"{verb}: unexpected argument {free[0][:40]!r}")
    return values
