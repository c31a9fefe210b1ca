"""The one shape of hermesctl's JSON documents, stdlib only: Output.document prints through it, and
so does the quick served `ps` (hermesctl.quick_ps), which runs before rich is imported."""
import json

SCHEMA_VERSION = 1


def document_text(kind: str, body: dict, unreachable: list) -> str:
    """{"schema": "hermesctl.<kind>/v1", ...body, "unreachable": [...]} as indented JSON and a newline."""
    doc = {"schema": f"hermesctl.{kind}/v{SCHEMA_VERSION}", **body, "unreachable": unreachable}
    return json.dumps(doc, indent=2, sort_keys=False, default=str) + "\n"
