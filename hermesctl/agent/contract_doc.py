"""The agent's verb table for docs/contract.md, made from contract.VERBS (the one table):
`python3 -m hermesctl.agent.contract_doc` prints it; tests/test_contract_table.py checks the doc."""
from hermesctl.agent.contract import VERBS


def _usage(verb: str, args: tuple) -> str:
    parts = [verb]
    for name, kind, typ, default in args:
        shown = "P" if typ == "profile" else name.upper()
        if kind == "arg":
            parts.append(typ.replace("|", "/") if "|" in typ else shown)
        elif kind == "args":
            parts.append(f"{shown}…")
        elif kind == "flag":
            parts.append(f"[--{name}]")
        elif kind == "option":
            parts.append(f"[--{name} {'N' if typ in ('int', 'float') else shown}]")
        elif kind == "rest":
            parts.append("-- ARGV")
    return " ".join(parts)


def table() -> str:
    rows = ["| verb | kind | answers | fields |", "|---|---|---|---|"]
    for verb, spec in VERBS.items():
        rows.append(f"| `{_usage(verb, spec['args'])}` | {spec['kind']} | {spec['summary']} | {spec['fields']} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(table())
