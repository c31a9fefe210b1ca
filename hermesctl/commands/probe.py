"""hermesctl probe TARGET... [--prompt TEXT]: is each gateway serving, not merely running?

Per container: its `status` (how ps judges each gateway, platforms included), then one exec of
the agent's `serving` for the selected profiles: their API servers asked on the container's
loopback, as hermes (the key never reaches the host), with --prompt one chat completion each.
The judgment is hermesctl.agent.serving's, the one `serve` exports too."""
from hermesctl.agent.serving import judge
from hermesctl.backends.docker.fleet import Fleet, Selection
from hermesctl.core.errors import describe
from hermesctl.core.exit_codes import ExitStatus
from hermesctl.core.parallel import fan_out
from hermesctl.engine.rows import gateway_row
from hermesctl.model.results import ItemResult, exit_status
from hermesctl.model.targets import Target
from hermesctl.render.output import Output, state_text
from hermesctl.render.plain_table import Styled, platforms_summary

EXEC_MARGIN_S = 3.0  # the agent's HTTP deadline is this much shorter than the exec's


def _ms(part: dict | None) -> str | None:
    if not isinstance(part, dict) or not isinstance(part.get("seconds"), (int, float)):
        return None
    status = part.get("status")
    return f"{status if status is not None else 'no answer'} {part['seconds'] * 1000:.0f}ms"


def probe(out: Output, fleet: Fleet, targets: list[Target], *, prompt: str | None) -> ExitStatus:
    selections = fleet.select(targets)
    http_timeout = max(1.0, fleet.exec_timeout - EXEC_MARGIN_S)

    def ask(sel: Selection) -> dict:
        args = [*sel.profiles, "--timeout", f"{http_timeout:g}", *(["--prompt", prompt] if prompt is not None else [])]
        doc = fleet.ask(sel.container, "serving", *args)
        profiles = doc.get("profiles")
        return profiles if isinstance(profiles, dict) else {}

    gateways, items = [], []
    for o in fan_out(ask, selections):
        sel = o.item
        if not o.ok:
            fleet.did_not_answer(sel.container, o.error)
        for p in sel.profiles:
            row = gateway_row(sel.container, sel.snapshot.slots[p], sel.snapshot.orphans(p))
            answer = o.value.get(p) if o.ok else None
            verdict = judge(row.state, row.platforms, answer, prompted=prompt is not None)
            api = (answer or {}).get("api") if isinstance((answer or {}).get("api"), dict) else {}
            chat = api.get("chat") if isinstance(api.get("chat"), dict) else None
            unanswered = not o.ok and row.state == "up"
            problems = [describe(o.error)] if unanswered else verdict.problems
            if prompt is not None and verdict.serving and not api.get("enabled"):
                problems = ["no API server: the prompt was not sent"]  # serving by its platforms alone
            gateways.append({
                "endpoint": row.endpoint, "container": row.container, "profile": p, "target": row.target,
                "serving": verdict.serving, "reason": "no-answer" if unanswered else verdict.reason,
                "problems": problems,
                "state": row.state, "platforms": row.platforms or {},
                "configured": (answer or {}).get("configured") or [], "api": api or None,
                "latency_s": chat.get("seconds") if chat else None,
                "first_line": chat.get("first_line") if chat else None})
            items.append(ItemResult(row.target, verdict.serving,
                                    "unreachable" if unanswered else ("ok" if verdict.serving else "not-serving"),
                                    verdict.detail))
    if out.json:
        out.document("probe", {"prompted": prompt is not None, "gateways": gateways})
    else:
        columns = ["TARGET", "SERVING", "STATE", "PLATFORMS", "HEALTH"] + (["CHAT", "ANSWER"] if prompt is not None else []) + ["DETAIL"]
        rows = []
        for g in gateways:
            api = g["api"] or {}
            serving = Styled("yes", "green") if g["serving"] else Styled("no", "bold red")
            row = [g["target"], serving, state_text(g["state"]), platforms_summary(g["platforms"]) or None,
                   _ms(api.get("health")) if api.get("enabled") else None]
            if prompt is not None:
                row += [_ms(api.get("chat")), g["first_line"]]  # escaped by the table (output._cell)
            rows.append(row + ["; ".join(g["problems"]) or None])
        out.print(out.table(columns, rows, endpoints=[g["endpoint"] for g in gateways]))
    return exit_status(items)
