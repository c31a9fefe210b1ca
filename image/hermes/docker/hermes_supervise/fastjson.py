# Runs as hermes: imported by the agent, hermes-slots or hermes-boot-user, which run as hermes only.
"""JSON through the C accelerator `_json`, without importing the `json` package.

`import json` pulls in re, enum and collections: about 20 ms of a ~35 ms agent start in a busy
container, paid once per container by every `hermesctl ps`. The C scanner and encoder are what
`json` itself uses; we only supply the settings object `json` would. Falls back to `json` if the
accelerator is missing.
"""
try:
    import _json
except ImportError:  # pragma: no cover - CPython always has it
    _json = None


def _constant(name: str) -> float:
    return {"-Infinity": float("-inf"), "Infinity": float("inf"), "NaN": float("nan")}[name]


class _Settings:
    """The attributes c_make_scanner reads from a json.JSONDecoder."""
    strict = True
    object_hook = None
    object_pairs_hook = None
    parse_float = float
    parse_int = int
    parse_constant = staticmethod(_constant)
    memo: dict = {}


_WHITESPACE = " \t\n\r"

if _json is not None:
    _scan = _json.make_scanner(_Settings())
    _encode = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", False, False, True)
    # allow_nan=False: inf or NaN is a ValueError instead of `Infinity`/`NaN`, which is not JSON
    _encode_strict = _json.make_encoder(None, None, _json.encode_basestring_ascii, None, ":", ",", False, False,
                                        False)


def loads(text: str):
    if _json is None:
        import json
        return json.loads(text)
    start = len(text) - len(text.lstrip(_WHITESPACE))
    try:
        value, end = _scan(text, start)
    except StopIteration as exc:
        raise ValueError(f"not JSON at {exc.value}") from None
    finally:
        _Settings.memo.clear()
    if text[end:].strip(_WHITESPACE):
        raise ValueError(f"extra data at {end}")
    return value


def dumps(value, *, strict: bool = False) -> str:
    """Compact JSON; ASCII only; objects of other types are a bug (TypeError). `strict`: a
    non-finite number is a ValueError (the usage documents, which promise strict JSON; other
    verbs pass on what hermes' own files hold)."""
    if _json is None:
        import json
        return json.dumps(value, separators=(",", ":"), allow_nan=not strict)
    return "".join((_encode_strict if strict else _encode)(value, 0))
