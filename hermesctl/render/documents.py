"""The one shape of hermesctl's JSON documents, stdlib only: Output.document prints through it, and
so does the quick served `ps` (hermesctl.cli.quick_ps), which runs before rich is imported."""
import json

SCHEMA_VERSION = 1


def document_text(kind: str, body: dict, unreachable: list) -> str:
    """{"schema": "hermesctl.<kind>/v1", ...body, "unreachable": [...]} as indented, strict JSON
    and a newline (see strict)."""
    doc = {"schema": f"hermesctl.{kind}/v{SCHEMA_VERSION}", **body, "unreachable": unreachable}
    return json.dumps(strict(doc), indent=2, sort_keys=False, default=str, allow_nan=False) + "\n"


def strict(doc):
    """The document with every number JSON can carry: Python writes inf and NaN as `Infinity` and
    `NaN`, which no JSON parser but Python's reads. Such a figure (a hermes-written state.db can
    hold one; sums can overflow to one) becomes null, and `non_finite` lists where, so that a
    null is never mistaken for "nothing"."""
    found: list[str] = []
    cleaned = _finite(doc, "", found)
    if found and isinstance(cleaned, dict):
        cleaned["non_finite"] = found
    return cleaned


def _finite(value, path: str, found: list):
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            found.append(path or "/")
            return None
        return value
    if isinstance(value, dict):
        return {k: _finite(v, f"{path}/{k}", found) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, f"{path}/{n}", found) for n, v in enumerate(value)]
    return value
